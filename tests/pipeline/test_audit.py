"""The audit archive: every envelope of a real export (emulator, callback receiver, PostgreSQL) is kept compressed,
linked to its document's ledger row; the operator's command prints it; old envelopes are purged; the archive never
breaks a send; the logs of an export carry no patient data and no document bytes."""

import dataclasses
import datetime as dt
import hashlib
import logging
import re
import zlib

import psycopg
import pytest

from iemk_etl import cli, settings
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import PIX_PATH, REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import extract, patients, replies, send, validate
from iemk_etl.signing import keys
from iemk_etl.store import audit, integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

from exchange_helpers import wait_answers

END = dt.date(2026, 9, 10)
GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 9, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 9, 10, tzinfo=demo_data.MSK))
ENTITY = "17c74e63-dc38-438d-a27a-a1aa063ee7b8"


@pytest.fixture
def db(fresh_dsn):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=4, days=2, seed=3, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        yield fresh_dsn, conn


def _client(url, dev_keys, observer):
    return client.IemkClient(url + REPOSITORY_PATH, client_entity_id=ENTITY, signer=keys.load_signer(*dev_keys),
                             timeout=5, observer=observer)



def _export(dsn, conn, dev_keys, flk_packs, observer, *, feed=False):
    """A small export: extract, validate, (PIX feed,) send, wait for the replies, write back; the ledger ids."""
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        cfg = dataclasses.replace(settings.load(), callback_url=callback.url, pix_url=emulator.url + PIX_PATH,
                                  client_entity_id=ENTITY)
        ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
        with _client(emulator.url, dev_keys, observer) as iemk:
            if feed:
                patients.feed(conn, GKB, ids, cfg, iemk)
            report = send.send(dsn, ids, cfg, iemk, patients_first=feed)
        wait_answers(conn, report.sent)
        replies.write_back(conn, GKB, ids)
    return ids, report


def test_every_document_has_its_request_answer_and_reply_archived_with_hashes_and_ledger_id(db, dev_keys, flk_packs):
    dsn, conn = db
    ids, report = _export(dsn, conn, dev_keys, flk_packs, audit.Recorder(dsn, GKB))
    assert ids and report.accepted_now == len(ids)
    for ledger_id in ids:
        rows = audit.of_ledger(conn, [ledger_id])
        assert [(r.direction, r.kind) for r in rows] == [("out", "request"), ("in", "answer"), ("in", "reply")]
        request, answer, reply = rows
        assert {r.ledger_id for r in rows} == {ledger_id} and {r.mo_oid for r in rows} == {GKB}
        mid = conn.execute("SELECT message_id FROM iemk.ledger WHERE id = %s", (ledger_id,)).fetchone()[0]
        assert request.message_id == mid and answer.relates_to == mid and reply.relates_to == mid
        assert request.action.endswith("ProvideAndRegisterDocumentSet-b") and request.service == "repository"
        assert answer.http_status in (200, 202) and request.http_status is None
        stored = {r[0]: (bytes(r[1]), r[2]) for r in conn.execute(
            "SELECT id, body, sha256 FROM iemk.audit_exchange WHERE id = ANY(%s)", ([r.id for r in rows],))}
        for row in rows:
            packed, digest = stored[row.id]
            raw = zlib.decompress(packed)
            assert hashlib.sha256(raw).hexdigest() == digest == row.sha256
            assert (len(raw), len(packed)) == (row.raw_size, row.stored_size)
            assert audit.body(conn, row.id) == raw
        # the reply is the very body the receiver stored in the inbox
        inbox_body = conn.execute("SELECT body FROM iemk.inbox WHERE relates_to = %s", (mid,)).fetchone()[0]
        assert audit.body(conn, reply.id) == bytes(inbox_body)
        # the request archived is the ITI-41 that carried this document's CDA
        cda = conn.execute("SELECT d.cda FROM mis.semd_document d JOIN iemk.ledger l ON l.document_id = d.id"
                           " WHERE l.id = %s", (ledger_id,)).fetchone()[0]
        assert hashlib.sha256(bytes(cda)).hexdigest() in _document_hashes(audit.body(conn, request.id))


def _document_hashes(envelope: bytes) -> set[str]:
    """SHA-256 of every document carried (base64 or MTOM-less inline) by an ITI-41 request."""
    import base64

    from lxml import etree

    docs = etree.fromstring(envelope).iter("{urn:ihe:iti:xds-b:2007}Document")
    return {hashlib.sha256(base64.b64decode(d.text or "")).hexdigest() for d in docs}


def test_the_audit_command_prints_a_documents_exchange_in_order_and_shows_one_envelope(db, dev_keys, flk_packs,
                                                                                         monkeypatch, capsys):
    dsn, conn = db
    ids, _ = _export(dsn, conn, dev_keys, flk_packs, audit.Recorder(dsn, GKB))
    document_id = conn.execute("SELECT document_id FROM iemk.ledger WHERE id = %s", (ids[0],)).fetchone()[0]
    monkeypatch.setenv("IEMK_SOURCE_DSN", dsn)
    assert cli.main(["audit", "--document", str(document_id)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    shown = [re.search(r"([→←]) ИЭМК\s+(\w+)", line).groups() for line in lines]
    assert shown == [("→", "request"), ("←", "answer"), ("←", "reply")]
    rows = audit.of_document(conn, document_id)
    for line, row in zip(lines, rows, strict=True):
        assert line.startswith(f"#{row.id} ") and row.sha256 in line and f"{row.raw_size} B" in line
        assert f"ledger {ids[0]}" in line and (row.message_id or row.relates_to) in line
    assert "HTTP 20" in lines[1]
    assert cli.main(["audit", "--show", str(rows[0].id)]) == 0
    assert capsys.readouterr().out.encode() == audit.body(conn, rows[0].id) + b"\n"


def test_purge_removes_only_envelopes_older_than_the_retention(db, monkeypatch, capsys):
    dsn, conn = db
    old, recent = (audit.insert(conn, audit.Envelope("out", "request", f"<e>{n}</e>".encode())) for n in (1, 2))
    conn.execute("UPDATE iemk.audit_exchange SET at = now() - interval '91 days' WHERE id = %s", (old,))
    conn.execute("UPDATE iemk.audit_exchange SET at = now() - interval '89 days' WHERE id = %s", (recent,))
    monkeypatch.setenv("IEMK_SOURCE_DSN", dsn)
    monkeypatch.setenv("IEMK_AUDIT_RETENTION_DAYS", "90")
    assert cli.main(["audit", "--purge"]) == 0
    assert "удалено конвертов старше 90 дн.: 1" in capsys.readouterr().out
    assert [r[0] for r in conn.execute("SELECT id FROM iemk.audit_exchange")] == [recent]
    assert audit.purge(conn, 30) == 1
    assert conn.execute("SELECT count(*) FROM iemk.audit_exchange").fetchone()[0] == 0


class _Raising:
    def __init__(self):
        self.calls = 0

    def on_exchange(self, envelope):
        self.calls += 1
        raise RuntimeError("archive is down")


def test_an_archive_that_fails_never_stops_a_send(db, dev_keys, flk_packs, caplog):
    """An observer that raises, and a recorder whose database is unreachable: every document still goes and is
    stored; the failure is logged without content."""
    dsn, conn = db
    raising = _Raising()
    ids, report = _export(dsn, conn, dev_keys, flk_packs, raising)
    assert report.accepted_now == len(ids) and raising.calls == 2 * len(ids)        # request and answer, each
    assert {s for (s,) in conn.execute("SELECT state FROM iemk.ledger")} == {"stored"}
    assert "exchange observer failed (RuntimeError)" in caplog.text

    unreachable = audit.Recorder("host=127.0.0.1 port=9 dbname=none user=none")
    for ledger_id in ids:
        conn.execute("UPDATE iemk.ledger SET state = 'valid', resend_round = resend_round + 1 WHERE id = %s",
                     (ledger_id,))
    caplog.clear()
    _, again = _export(dsn, conn, dev_keys, flk_packs, unreachable)
    assert again.accepted_now == len(ids) and unreachable.failures == 2 * len(ids)
    assert "audit: envelope out/request not archived (OperationalError)" in caplog.text


def test_an_export_logs_no_patient_data_and_no_document_bytes(fresh_dsn, dev_keys, flk_packs, caplog):
    """At DEBUG, with the patient feed, send, the receiver and write-back, and documents that fail format control
    on a patient's СНИЛС (the finding names it): no family name, given name or СНИЛС of the seeded patients, no
    piece of a document, in any log record."""
    dsn = fresh_dsn
    conn = psycopg.connect(dsn, autocommit=True)
    demo_data.seed(conn, patients=6, days=2, seed=5, end=END, fail_share=0.5, unsigned_share=0.0)
    integration.set_enabled(conn, GKB, True)
    caplog.set_level(logging.DEBUG)
    _export(dsn, conn, dev_keys, flk_packs, audit.Recorder(dsn, GKB), feed=True)
    assert caplog.records, "the export logged nothing at all: the check would prove nothing"
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    secrets = set()
    for family, given, snils in conn.execute("SELECT family, given, snils FROM mis.patient WHERE mo_oid = %s",
                                             (GKB,)):
        secrets |= {family, given} | ({snils, f"{snils[:3]}-{snils[3:6]}-{snils[6:9]} {snils[9:]}"} if snils else set())
    assert secrets
    leaked = sorted(s for s in secrets if s in text)
    assert not leaked, f"patient data in the logs: {leaked}"
    for (cda,) in conn.execute("SELECT cda FROM mis.semd_document WHERE mo_oid = %s", (GKB,)):
        document = bytes(cda).decode("utf-8", errors="replace")
        middle = document[len(document) // 2: len(document) // 2 + 48]
        assert middle not in text and "ClinicalDocument" not in text
    assert conn.execute("SELECT count(*) FROM iemk.ledger WHERE state = 'invalid'").fetchone()[0] > 0
    conn.close()


def test_envelopes_of_an_older_resend_round_stay_with_the_document(db, dev_keys, flk_packs):
    """A resend round changes the ledger's MessageID; the first round's envelopes are still the document's."""
    dsn, conn = db
    ids, _ = _export(dsn, conn, dev_keys, flk_packs, audit.Recorder(dsn, GKB))
    first_mid = conn.execute("SELECT message_id FROM iemk.ledger WHERE id = %s", (ids[0],)).fetchone()[0]
    conn.execute("UPDATE iemk.ledger SET state = 'valid', resend_round = resend_round + 1 WHERE id = ANY(%s)", (ids,))
    _export(dsn, conn, dev_keys, flk_packs, audit.Recorder(dsn, GKB))
    second_mid, document_id = conn.execute("SELECT message_id, document_id FROM iemk.ledger WHERE id = %s",
                                           (ids[0],)).fetchone()
    assert second_mid != first_mid
    rows = audit.of_document(conn, document_id)
    assert [(r.kind, r.message_id if r.kind == "request" else r.relates_to) for r in rows] == [
        ("request", first_mid), ("answer", first_mid), ("reply", first_mid),
        ("request", second_mid), ("answer", second_mid), ("reply", second_mid)]
