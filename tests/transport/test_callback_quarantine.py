"""Only replies we asked for change anything: the callback receiver keeps a reply whose RelatesTo is no MessageID
we sent (or that has none) in a bounded quarantine, never in the inbox that moves statuses; write-back and the
«Обновить» of one document use the same rule; the quarantine is counted and purged by retention."""

import dataclasses
import datetime as dt

import httpx
import psycopg
import pytest

from iemk_etl import settings
from iemk_etl.cli.status import print_document
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import extract, replies, send, validate
from iemk_etl.protocol import soap
from iemk_etl.protocol.xds import submit
from iemk_etl.protocol.xds.common import SUCCESS, RegistryResponse, build_registry_response
from iemk_etl.signing import keys
from iemk_etl.store import inbox, integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer, ReplyTrust

END = dt.date(2026, 9, 10)
GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 9, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 9, 10, tzinfo=demo_data.MSK))


def _reply(message_id: str, relates_to: str | None) -> bytes:
    """An unsigned Success, as anyone on the network could post it."""
    return soap.to_bytes(soap.build_envelope(
        build_registry_response(RegistryResponse(SUCCESS)),
        soap.Addressing(message_id, submit.ASYNC_RESPONSE_ACTION, relates_to=relates_to)))


def _post(callback: CallbackServer, body: bytes) -> int:
    return httpx.post(callback.url, content=body, headers={"Content-Type": soap.CONTENT_TYPE}).status_code


@pytest.fixture
def waiting(fresh_dsn, dev_keys, flk_packs):
    """Documents sent and waiting for ИЭМК's answer, which does not come during the test."""
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=4, days=3, seed=1, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        with CallbackServer(fresh_dsn) as callback:
            cfg = dataclasses.replace(settings.load(), callback_url=callback.url)
            ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
            with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=3600), fresh_dsn) as emulator, \
                    client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id=cfg.require_client_entity_id(),
                                      signer=keys.load_signer(*dev_keys), timeout=5) as iemk:
                sent = send.send(fresh_dsn, ids, cfg, iemk, patients_first=False).sent
            assert sent
            yield conn, callback, ids, sent


def _statuses(conn) -> set[str]:
    return {s for (s,) in conn.execute("SELECT DISTINCT status FROM mis.semd_document WHERE mo_oid = %s", (GKB,))}


def test_a_forged_success_with_an_unknown_relates_to_changes_nothing(waiting, capsys):
    conn, callback, ids, sent = waiting
    assert _post(callback, _reply("urn:uuid:forged-1", "urn:uuid:made-up")) == 202
    assert _post(callback, _reply("urn:uuid:forged-1", "urn:uuid:made-up")) == 202      # posted again: counted
    assert _post(callback, _reply("urn:uuid:forged-2", None)) == 202
    assert conn.execute("SELECT count(*) FROM iemk.inbox").fetchone()[0] == 0
    assert conn.execute("SELECT message_id, reason, hits FROM iemk.reply_quarantine ORDER BY message_id"
                        ).fetchall() == [("urn:uuid:forged-1", "unknown_relates_to", 2),
                                         ("urn:uuid:forged-2", "no_relates_to", 1)]
    counts = replies.write_back(conn, GKB, ids)
    assert counts["replies_stored"] == 0 and counts["now_sent"] == len(sent)
    assert (counts["quarantined_unknown_relates_to"], counts["quarantined_no_relates_to"]) == (1, 1)
    assert _statuses(conn) == {"Передан в ИЭМК"}
    # «Обновить» on one waiting document reads the same inbox: still waiting
    document_id = conn.execute("SELECT document_id FROM iemk.ledger WHERE id = %s", (sent[0],)).fetchone()[0]
    print_document(conn, document_id, refresh=True)
    assert "Передан в ИЭМК" in capsys.readouterr().out.splitlines()[0]


def test_an_answer_to_a_message_we_sent_goes_to_the_inbox_and_is_applied(waiting):
    conn, callback, ids, sent = waiting
    message_id = conn.execute("SELECT message_id FROM iemk.ledger WHERE id = %s", (sent[0],)).fetchone()[0]
    assert conn.execute("SELECT ledger_id FROM iemk.sent_message WHERE message_id = %s",
                        (message_id,)).fetchone() == (sent[0],)
    assert _post(callback, _reply("urn:uuid:real-1", message_id)) == 202
    assert conn.execute("SELECT count(*) FROM iemk.reply_quarantine").fetchone()[0] == 0
    assert replies.write_back(conn, GKB, ids)["replies_stored"] == 1
    assert conn.execute("SELECT state FROM iemk.ledger WHERE id = %s", (sent[0],)).fetchone()[0] == "stored"


def test_an_answer_that_beat_the_record_of_its_send_is_admitted_once_the_send_is_recorded(waiting):
    """The reply came before the sending transaction committed (or a crash lost the commit and the next run sends
    the same MessageID): quarantined first, it joins the inbox once the send is recorded."""
    conn, callback, ids, sent = waiting
    ledger_id = sent[0]
    early = "urn:uuid:recorded-later"
    assert _post(callback, _reply("urn:uuid:early-1", early)) == 202
    assert replies.replies_pending(conn, [ledger_id]) == (0, 1)
    conn.execute("UPDATE iemk.ledger SET message_id = %s WHERE id = %s", (early, ledger_id))  # the send is recorded
    inbox.record_sent(conn, early, ledger_id)
    assert replies.replies_pending(conn, [ledger_id]) == (1, 1)
    assert conn.execute("SELECT count(*) FROM iemk.reply_quarantine").fetchone()[0] == 0
    assert replies.write_back(conn, GKB, ids)["replies_stored"] == 1


def test_the_quarantine_is_purged_by_retention(waiting):
    conn, callback, ids, _ = waiting
    for n in range(3):
        assert _post(callback, _reply(f"urn:uuid:junk-{n}", f"urn:uuid:nothing-{n}")) == 202
    conn.execute("UPDATE iemk.reply_quarantine SET last_received_at = now() - interval '40 days'"
                 " WHERE message_id <> 'urn:uuid:junk-2'")
    counts = replies.write_back(conn, GKB, ids, quarantine_days=30)
    assert counts["quarantine_purged"] == 2
    assert [r[0] for r in conn.execute("SELECT message_id FROM iemk.reply_quarantine")] == ["urn:uuid:junk-2"]
    assert inbox.purge_quarantine(conn, 30, max_rows=0) == 1                    # and it never grows past its cap


def test_unsigned_replies_are_quarantined_when_signed_ones_are_required(waiting, fresh_dsn):
    conn, _, _, sent = waiting
    message_id = conn.execute("SELECT message_id FROM iemk.ledger WHERE id = %s", (sent[0],)).fetchone()[0]
    strict = ReplyTrust.from_settings(settings.load({"IEMK_REQUIRE_SIGNED_REPLIES": "true"}))  # the older spelling
    assert strict.require
    with CallbackServer(fresh_dsn, trust=strict) as receiver:
        assert _post(receiver, _reply("urn:uuid:unsigned-1", message_id)) == 202
    assert conn.execute("SELECT reason FROM iemk.reply_quarantine").fetchall() == [("untrusted_signer",)]
    assert conn.execute("SELECT count(*) FROM iemk.inbox").fetchone()[0] == 0
