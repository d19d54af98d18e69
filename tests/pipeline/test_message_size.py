"""Sizes end to end: a 30 MB СЭМД (an outpatient epicrisis with a scanned report as PDF inside) is formed, validated,
signed, sent, stored by the emulator, listed (ITI-18) and retrieved (ITI-43) byte-identical, against the real
emulator and PostgreSQL; a 70 MB body gets HTTP 413; a message over the limit is never sent by the client.

The 30 MB run prints its time and peak memory (not asserted: it depends on the machine)."""

import base64
import dataclasses
import datetime as dt
import http.client
import resource
import time
from urllib.parse import urlsplit

import psycopg
import pytest

from iemk_etl import errors, settings
from iemk_etl.devtools import demo_data
from iemk_etl.devtools.generate import scanned_pdf
from iemk_etl.emulator.server import REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import extract, forming, queries, replies, send, sign, validate
from iemk_etl.protocol import soap, xml
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.semd.header import unique_id
from iemk_etl.signing import backend, keys
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

from exchange_helpers import _submission, wait_answers
from semd_helpers import new_visit

END = dt.date(2026, 11, 21)
DAY = END + dt.timedelta(days=3)
GKB = demo_data.DEMO_MO[0][0]
MSK = demo_data.MSK
MB = 1_000_000


def _bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime.combine(day, dt.time(), MSK), dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), MSK))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # KiB on Linux


def test_a_30_mb_semd_with_a_pdf_goes_through_the_whole_exchange(fresh_dsn, dev_keys, flk_packs, capsys):
    if "openssl" not in backend.available_backends():
        # Pure-Python Streebog hashes ≈0.1 MB/s: the five hashes of 30-40 MB here would take the best part of an hour.
        pytest.skip("OpenSSL gost engine absent (libengine-gost-openssl; CI installs it): a 30 MB СЭМД needs it")
    timings: dict[str, float] = {}
    rss_before = _peak_rss_mb()

    def timed(stage: str, started: float) -> float:
        now = time.perf_counter()
        timings[stage] = now - started
        return now

    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=2, days=1, seed=5, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        visit = new_visit(conn, GKB, DAY, "SCAN-1")
        conn.execute("INSERT INTO mis.report_template (visit_id, name, file_name, content, to_iemk, signed_at)"
                     " VALUES (%s, 'Протокол (скан)', 'scan.pdf', %s, true, now())", (visit, scanned_pdf(22_300_000)))

        started = time.perf_counter()
        formed = forming.form_period(conn, GKB, *_bounds(DAY))
        assert formed.formed == {42: 1}
        [(document_id, cda)] = conn.execute("SELECT id, cda FROM mis.semd_document WHERE local_uid = '42-SCAN-1'"
                                            ).fetchall()
        cda = bytes(cda)
        assert 29 * MB < len(cda) < 32 * MB          # the СЭМД itself is 30 MB, an ITI-41 envelope 40 MB
        assert b'mediaType="application/pdf"' in cda
        started = timed("form", started)
        assert sign.sign_period(conn, KeyStore(settings.load()), GKB, *_bounds(DAY), [42]).signed == [document_id]
        started = timed("sign (CAdES)", started)

        config = EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05)
        with EmulatorServer(config, fresh_dsn) as emulator, CallbackServer(fresh_dsn) as callback:
            cfg = dataclasses.replace(settings.load().with_iemk_url(emulator.url), callback_url=callback.url,
                                      packs_dir=flk_packs, logical_control=True)
            started = time.perf_counter()
            ids = validate.validate(conn, extract.extract_documents(conn, GKB, [document_id]), cfg)
            assert len(ids) == 1, conn.execute("SELECT status FROM mis.semd_document WHERE id = %s",
                                               (document_id,)).fetchone()
            started = timed("validate (XSD + Schematron)", started)
            with client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id=cfg.require_client_entity_id(),
                                   signer=keys.load_signer(*dev_keys), timeout=120) as iemk:
                report = send.send(fresh_dsn, ids, cfg, iemk, patients_first=False)
                assert report.accepted_now == 1, report
                started = timed("send (WS-Security sign + POST 40 MB)", started)
                wait_answers(conn, report.sent, timeout=180)
                replies.write_back(conn, GKB, ids)
                started = timed("emulator ФЛК + store + reply", started)
                status = conn.execute("SELECT status FROM mis.semd_document WHERE id = %s", (document_id,)).fetchone()
                assert status == ("Сохранен в ИЭМК",)

                uid = unique_id(GKB, "42-SCAN-1")
                listed = queries.list_documents(iemk, cfg, xds_query.DocumentQuery(unique_ids=(uid,), statuses=()))
                assert [e.unique_id for e in listed] == [uid]
                started = timed("list (ITI-18)", started)
                shown = queries.show_document(iemk, cfg, conn, uid)
                timed("retrieve (ITI-43) + verify", started)
        assert shown.data == cda                           # byte-identical
        assert shown.same_as_sent is True
        assert shown.signature is not None and "НЕ верна" not in shown.signature
    rss_after = _peak_rss_mb()
    with capsys.disabled():
        total = sum(timings.values())
        print(f"\n30 MB СЭМД ({len(cda) / MB:.1f} MB, PDF inside): total {total:.1f} s; "
              + "; ".join(f"{k} {v:.1f} s" for k, v in timings.items())
              + f"; peak RSS of the test process {rss_after:.0f} MiB (was {rss_before:.0f} MiB before)")


def test_a_70_mb_body_gets_413(fresh_dsn):
    """At the default limit (64 MiB): the emulator answers 413 to a client that sends the whole 70 MB body."""
    with EmulatorServer(EmulatorConfig(), fresh_dsn) as emulator:
        url = urlsplit(emulator.url)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            connection.request("POST", REPOSITORY_PATH, body=b"<" * (70 * MB),
                               headers={"Content-Type": soap.CONTENT_TYPE})
            answer = connection.getresponse()
            body = answer.read()
        finally:
            connection.close()
        assert answer.status == 413
        assert answer.getheader("Connection") == "close"
        assert f"request body of {70 * MB} bytes exceeds the limit of {xml.MAX_MESSAGE_BYTES} bytes".encode() in body
        assert emulator.emulator.stats()["received"] == 0


def test_the_client_never_sends_a_message_over_the_limit(fresh_dsn, dev_keys):
    """A 51 MB СЭМД makes a 68 MB envelope: refused before it goes (MESSAGE_TOO_LARGE: the МИС's data, never
    retried); an answer 413 is the same error."""
    document = b"<ClinicalDocument xmlns='urn:hl7-org:v3'>" + b"x" * (51 * MB) + b"</ClinicalDocument>"
    with EmulatorServer(EmulatorConfig(), fresh_dsn) as emulator, \
            client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id="17c74e63-dc38-438d-a27a-a1aa063ee7b8",
                              signer=keys.load_signer(*dev_keys), timeout=60) as iemk:
        result = iemk.provide_and_register(_submission(document), message_id=soap.new_message_id(),
                                           reply_to="http://127.0.0.1:9/cb")
        assert emulator.emulator.stats()["received"] == 0           # nothing went
    assert result.kind is errors.MESSAGE_TOO_LARGE and result.verdict is client.Verdict.REJECTED
    assert result.http_status is None
    assert result.error.startswith("Размер сообщения превышает допустимый (64,0 МБ): запрос ")
    # The server's 413 (its limit lower than ours) maps to the same error.
    with EmulatorServer(EmulatorConfig(max_message_bytes=settings.MIN_MESSAGE_BYTES), fresh_dsn) as emulator, \
            client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id="17c74e63-dc38-438d-a27a-a1aa063ee7b8",
                              signer=keys.load_signer(*dev_keys), timeout=60) as iemk:
        result = iemk.provide_and_register(_submission(document[:MB]), message_id=soap.new_message_id(),
                                           reply_to="http://127.0.0.1:9/cb")
        assert emulator.emulator.stats()["received"] == 0
    assert (result.kind, result.http_status, result.verdict) == (errors.MESSAGE_TOO_LARGE, 413,
                                                                 client.Verdict.REJECTED)


@pytest.mark.parametrize("size", [8 * MB, 30 * MB])
def test_the_safe_parser_reads_a_large_semd(size):
    """What the emulator failed with before («Text node too long» from ≈7.5 MB): the size of a scanned report."""
    scan = scanned_pdf(size * 3 // 4)
    document = (b"<ClinicalDocument xmlns='urn:hl7-org:v3'><component><observationMedia><value mediaType="
                b"'application/pdf' representation='B64'>" + base64.b64encode(scan) + b"</value></observationMedia>"
                b"</component></ClinicalDocument>")
    root = xml.parse(document)
    assert base64.b64decode(root[0][0][0].text) == scan
