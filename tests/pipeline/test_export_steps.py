"""The export steps without Airflow: failures, retries and crash-safety, on real PostgreSQL and HTTP."""

import dataclasses
import datetime as dt

import psycopg
import pytest

from iemk_etl import settings, statuses
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import extract, replies, send, validate
from iemk_etl.signing import keys
from iemk_etl.store import integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

from exchange_helpers import wait_answers

END = dt.date(2026, 9, 10)
GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 9, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 9, 10, tzinfo=demo_data.MSK))


@pytest.fixture
def db(fresh_dsn):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=6, days=3, seed=1, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        yield fresh_dsn, conn


def _settings(callback_url: str, **changes) -> settings.Settings:
    return dataclasses.replace(settings.load(), callback_url=callback_url, retry_ladder=(dt.timedelta(minutes=1),),
                               **changes)


def _client(url: str, dev_keys, entity: str = "17c74e63-dc38-438d-a27a-a1aa063ee7b8") -> client.IemkClient:
    return client.IemkClient(url + REPOSITORY_PATH, client_entity_id=entity, signer=keys.load_signer(*dev_keys),
                             timeout=3)


def _statuses(conn) -> set[str]:
    return {s for (s,) in conn.execute("SELECT DISTINCT status FROM mis.semd_document WHERE mo_oid = %s", (GKB,))}



def test_unreachable_iemk_keeps_documents_signed_then_fails_them_visibly(db, dev_keys):
    dsn, conn = db
    cfg = _settings("http://127.0.0.1:9/cb")
    ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
    with _client("http://127.0.0.1:9", dev_keys) as iemk:
        first = send.send(dsn, ids, cfg, iemk, patients_first=False)
        assert (first.transient, first.failed, first.sent) == (len(ids), 0, [])
        assert _statuses(conn) == {"Подписан"}
        assert {r[0] for r in conn.execute("SELECT attempts FROM iemk.ledger")} == {1}
        # the ladder's one step (a minute) has passed
        conn.execute("UPDATE iemk.ledger SET next_attempt_at = next_attempt_at - interval '1 hour'")
        second = send.send(dsn, ids, cfg, iemk, patients_first=False)
    assert second.failed == len(ids)
    # The status names the dates of the tries, so documents tried across a minute's turn differ only there.
    found = _statuses(conn)
    assert found
    for status in found:
        assert status.startswith("Ошибка: не удалось передать документ в ИЭМК за 2 попыток (с ")
        assert "): ИЭМК недоступна" in status


def test_a_refusal_for_our_configuration_holds_the_documents_until_it_is_fixed(db, dev_keys, flk_packs):
    """ИЭМК does not know our clientEntityId (a Sender fault): every document shows the fault's words but is not
    ended; once the administrator fixes it (here: the service learns the system), the same documents go."""
    dsn, conn = db
    config = EmulatorConfig(packs_dir=flk_packs, known_clients=frozenset({"another-system"}))
    with EmulatorServer(config, dsn) as emulator, CallbackServer(dsn) as callback:
        cfg = _settings(callback.url)
        ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
        with _client(emulator.url, dev_keys) as iemk:
            report = send.send(dsn, ids, cfg, iemk, patients_first=False)
    assert (report.held, report.rejected, report.sent) == (len(ids), 0, [])
    assert _statuses(conn) == {"Ошибка: egis:UnknownClient: информационная система "
                               "[17c74e63-dc38-438d-a27a-a1aa063ee7b8] не зарегистрирована в ЕГИСЗ"}
    assert {r for r in conn.execute("SELECT state, error_code FROM iemk.ledger")} == {("valid", "egis:UnknownClient")}
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        cfg = _settings(callback.url)
        ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
        with _client(emulator.url, dev_keys) as iemk:
            again = send.send(dsn, ids, cfg, iemk, patients_first=False)
        assert again.accepted_now == len(ids)
        wait_answers(conn, again.sent)
        replies.write_back(conn, GKB, ids)
    assert _statuses(conn) == {"Сохранен в ИЭМК"}


def test_a_resend_after_a_lost_commit_registers_the_document_once(db, dev_keys, flk_packs):
    """The POST went out but the ledger never recorded it (a crash): the next run sends the same MessageID."""
    dsn, conn = db
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        cfg = _settings(callback.url)
        ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
        with _client(emulator.url, dev_keys) as iemk:
            with pytest.raises(RuntimeError, match="crash"), psycopg.connect(dsn) as crashing:
                with crashing.transaction():
                    report = send.SendReport()
                    send._send_one(crashing, ids[0], cfg, iemk, report)   # sent, then the process dies:
                    raise RuntimeError("crash")                              # the ledger update is rolled back
            assert conn.execute("SELECT state FROM iemk.ledger WHERE id = %s", (ids[0],)).fetchone()[0] == "valid"
            report = send.send(dsn, ids, cfg, iemk, patients_first=False)
        assert report.accepted_now == len(ids)
        wait_answers(conn, report.sent)
        replies.write_back(conn, GKB, ids)
        stats = emulator.emulator.stats()
    assert stats["received"] == len(ids) and stats["duplicate_deliveries"] == 1
    assert _statuses(conn) == {"Сохранен в ИЭМК"}


def test_late_answers_are_applied_by_the_next_run(db, dev_keys, flk_packs):
    dsn, conn = db
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        cfg = _settings(callback.url)
        ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
        with _client(emulator.url, dev_keys) as iemk:
            sent = send.send(dsn, ids, cfg, iemk, patients_first=False).sent
        assert _statuses(conn) == {"Передан в ИЭМК"}      # the sensor gave up before the answers came
        wait_answers(conn, sent)
    # next night: the old, unanswered documents are in scope again, and their answers are applied
    later = (PERIOD[1], PERIOD[1] + dt.timedelta(days=1))
    again = extract.extract(conn, GKB, *later)
    assert sorted(again) == sorted(sent)
    counts = replies.write_back(conn, GKB, again)
    assert counts["replies_stored"] == counts["now_stored"] == len(sent)
    assert _statuses(conn) == {"Сохранен в ИЭМК"}
    assert replies.write_back(conn, GKB, again)["replies_stored"] == 0   # applying again changes nothing


def test_write_back_repairs_a_status_edited_behind_the_ledger(db):
    dsn, conn = db
    ids = extract.extract(conn, GKB, *PERIOD)
    conn.execute("UPDATE mis.semd_document SET status = 'Сохранен в ИЭМК' WHERE mo_oid = %s", (GKB,))
    assert replies.write_back(conn, GKB, ids)["statuses_repaired"] == len(ids)
    assert _statuses(conn) == {statuses.SIGNED}


def test_bytes_changed_after_queueing_need_a_new_version(db):
    dsn, conn = db
    ids = extract.extract(conn, GKB, *PERIOD)
    conn.execute("UPDATE mis.semd_document SET cda = cda || '\\x20'::bytea WHERE id = (SELECT document_id"
                 " FROM iemk.ledger WHERE id = %s)", (ids[0],))
    passed = validate.validate(conn, ids, settings.load())
    assert ids[0] not in passed
    state, error = conn.execute("SELECT state, last_error FROM iemk.ledger WHERE id = %s", (ids[0],)).fetchone()
    assert state == "invalid" and "без новой версии" in error


def test_a_busy_registry_answer_is_sent_again_under_a_new_message_id(db, dev_keys, flk_packs):
    import json

    from iemk_etl.emulator.faults import FaultProfile

    dsn, conn = db
    busy = FaultProfile.load(json.dumps({"seed": 1, "operations": {"iti41": {"registry_busy": 1.0}}}))
    with CallbackServer(dsn) as callback:
        cfg = _settings(callback.url)
        ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
        with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, faults=busy), dsn) as emulator, \
                _client(emulator.url, dev_keys) as iemk:
            first = send.send(dsn, ids, cfg, iemk, patients_first=False).sent
            wait_answers(conn, first)
            assert replies.write_back(conn, GKB, ids)["replies_busy_requeued"] == len(ids)
        assert _statuses(conn) == {"Подписан"}                       # not an error: it will go again
        with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02), dsn) as emulator, \
                _client(emulator.url, dev_keys) as iemk:
            again = send.send(dsn, ids, cfg, iemk, patients_first=False)
            assert again.accepted_now == len(ids)                      # a new MessageID: processed, not dropped
            wait_answers(conn, again.sent)
            replies.write_back(conn, GKB, ids)
    assert _statuses(conn) == {"Сохранен в ИЭМК"}
