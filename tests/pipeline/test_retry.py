"""Trying again (issue 11): the backoff ladder across runs, requeue in a new round, lost answers looked up in ИЭМК,
and reconcile that knows replaced versions and retries ITI-18 — on real PostgreSQL and the emulator over HTTP."""

import dataclasses
import datetime as dt
import time

import psycopg
import pytest

from iemk_etl import errors, settings
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.faults import FaultProfile
from iemk_etl.emulator.server import REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import extract, lost, queries, reconcile, replies, retry, send, validate
from iemk_etl.signing import keys
from iemk_etl.store import inbox, integration, ledger
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

from exchange_helpers import wait_answers

END = dt.date(2026, 9, 10)
GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 9, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 9, 10, tzinfo=demo_data.MSK))
HOUR = dt.timedelta(hours=1)
LOST = FaultProfile.load('{"seed": 1, "operations": {"iti41": {"lost_reply": 1.0}}}')


@pytest.fixture
def db(fresh_dsn):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=4, days=2, seed=1, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        yield fresh_dsn, conn


def _settings(callback_url: str, **changes) -> settings.Settings:
    return dataclasses.replace(settings.load(), callback_url=callback_url, **changes)


def _client(url: str, dev_keys) -> client.IemkClient:
    return client.IemkClient(url + REPOSITORY_PATH, client_entity_id="17c74e63-dc38-438d-a27a-a1aa063ee7b8",
                             signer=keys.load_signer(*dev_keys), timeout=3)


def _rows(conn) -> list[tuple]:
    return conn.execute("SELECT state, attempts, retry_step, resend_round, error_code FROM iemk.ledger"
                        " ORDER BY id").fetchall()


def _statuses(conn) -> set[str]:
    return {s for (s,) in conn.execute("SELECT DISTINCT d.status FROM mis.semd_document d JOIN iemk.ledger l"
                                       " ON l.document_id = d.id")}


def _time_passes(conn) -> None:
    """The ladder's step has passed (the clock is not ours to move: the scheduled time is)."""
    conn.execute("UPDATE iemk.ledger SET next_attempt_at = next_attempt_at - interval '10 days'"
                 " WHERE next_attempt_at IS NOT NULL")



def _ids(conn, cfg) -> list[int]:
    return validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)


# -- the ladder ------------------------------------------------------------------------------------------------

def test_a_transient_failure_waits_its_ladder_step_and_ends_after_the_last(db, dev_keys):
    dsn, conn = db
    cfg = _settings("http://127.0.0.1:9/cb", retry_ladder=(HOUR, 2 * HOUR))
    ids = _ids(conn, cfg)
    with _client("http://127.0.0.1:9", dev_keys) as iemk:      # nothing listens there: connection refused
        first = send.send(dsn, ids, cfg, iemk, patients_first=False)
        assert first.transient == len(ids) and first.failed == 0
        assert set(_rows(conn)) == {("valid", 1, 1, 0, "UNREACHABLE")}
        waits = conn.execute("SELECT DISTINCT next_attempt_at - last_sent_at > interval '59 minutes'"
                             " FROM iemk.ledger").fetchall()
        assert waits == [(True,)]
        early = send.send(dsn, ids, cfg, iemk, patients_first=False)   # a run before that time sends nothing
        assert (early.transient, early.failed, early.accepted_now) == (0, 0, 0)
        assert set(_rows(conn)) == {("valid", 1, 1, 0, "UNREACHABLE")}
        assert _statuses(conn) == {"Подписан"}
        _time_passes(conn)
        assert send.send(dsn, ids, cfg, iemk, patients_first=False).transient == len(ids)
        assert set(_rows(conn)) == {("valid", 2, 2, 0, "UNREACHABLE")}
        _time_passes(conn)
        last = send.send(dsn, ids, cfg, iemk, patients_first=False)
    assert last.failed == len(ids)
    assert {r[0] for r in _rows(conn)} == {"failed"}
    found = _statuses(conn)      # the minutes of the tries are in the text: a minute's turn may split them
    assert found
    for status in found:
        assert status.startswith("Ошибка: не удалось передать документ в ИЭМК за 3 попыток (с ")
        assert "): ИЭМК недоступна" in status
    assert {r[0] for r in conn.execute("SELECT error_code FROM iemk.ledger")} == {errors.TRANSPORT.code}


def test_an_answer_to_a_request_whose_http_answer_broke_is_applied_even_after_the_ladder_ended(db, dev_keys,
                                                                                            flk_packs):
    """Found by the chaos run: ИЭМК took the request but every synchronous answer came back broken (the emulator's
    `malformed` fault processes, then cuts the answer), so our side gave up — yet ИЭМК registered the document and
    answered its MessageID. That answer decides: «Сохранен в ИЭМК», not «Ошибка: не удалось передать…»."""
    dsn, conn = db
    broken = FaultProfile.load('{"seed": 1, "operations": {"iti41": {"malformed": 1.0}}}')
    with CallbackServer(dsn) as callback, \
            EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, faults=broken), dsn) as emulator:
        cfg = _settings(callback.url, retry_ladder=(HOUR,))
        ids = _ids(conn, cfg)
        with _client(emulator.url, dev_keys) as iemk:
            assert send.send(dsn, ids, cfg, iemk, patients_first=False).transient == len(ids)
            _time_passes(conn)
            assert send.send(dsn, ids, cfg, iemk, patients_first=False).failed == len(ids)
        assert {r[0] for r in _rows(conn)} == {"failed"}
        # The answers to the MessageIDs ИЭМК took (one that beat our commit waits in quarantine until admitted).
        deadline = time.monotonic() + 15
        while inbox.admit_quarantined(conn) >= 0 and \
                conn.execute("SELECT count(DISTINCT relates_to) FROM iemk.inbox").fetchone()[0] < len(ids):
            assert time.monotonic() < deadline, "answers did not arrive"
            time.sleep(0.05)
        counts = replies.write_back(conn, GKB, ids)
    assert counts["replies_stored"] == len(ids)
    assert {r[0] for r in _rows(conn)} == {"stored"}
    assert _statuses(conn) == {"Сохранен в ИЭМК"}


def test_a_document_given_up_in_transport_that_iemk_holds_is_found_by_iti18(db, dev_keys, flk_packs):
    """Found by the chaos run: every synchronous answer broken AND the asynchronous reply lost — our side gave up,
    ИЭМК holds the document, and nothing would ever say so. The lookup of documents given up in transport does."""
    dsn, conn = db
    worst = FaultProfile.load('{"seed": 1, "operations": {"iti41": {"malformed": 1.0, "lost_reply": 1.0}}}')
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, faults=worst), dsn) as emulator:
        cfg = _settings("http://127.0.0.1:9/cb", retry_ladder=(HOUR,))
        ids = _ids(conn, cfg)
        with _client(emulator.url, dev_keys) as iemk:
            send.send(dsn, ids, cfg, iemk, patients_first=False)
            _time_passes(conn)
            assert send.send(dsn, ids, cfg, iemk, patients_first=False).failed == len(ids)
            assert replies.write_back(conn, GKB, ids)["replies_stored"] == 0     # no answer will ever come
            assert {r[0] for r in _rows(conn)} == {"failed"}
            cfg = cfg.with_iemk_url(emulator.url)
            assert lost.recover_given_up(conn, iemk, cfg, GKB) == len(ids)
    assert {r[0] for r in _rows(conn)} == {"stored"}
    assert _statuses(conn) == {"Сохранен в ИЭМК"}


def _fail_all(dsn, conn, dev_keys) -> list[int]:
    cfg = _settings("http://127.0.0.1:9/cb", retry_ladder=(HOUR,))
    ids = _ids(conn, cfg)
    with _client("http://127.0.0.1:9", dev_keys) as iemk:
        send.send(dsn, ids, cfg, iemk, patients_first=False)
        _time_passes(conn)
        assert send.send(dsn, ids, cfg, iemk, patients_first=False).failed == len(ids)
    return ids


def test_requeue_sends_failed_documents_again_under_a_new_message_id_and_keeps_the_round(db, dev_keys, flk_packs):
    dsn, conn = db
    ids = _fail_all(dsn, conn, dev_keys)
    old_ids = dict(conn.execute("SELECT id, message_id FROM iemk.ledger").fetchall())
    before = _rows(conn)
    assert retry.requeue(conn, GKB, ["failed"], code="TRANSPORT", dry_run=True) == sorted(ids)
    assert _rows(conn) == before                                     # the dry run changed nothing
    assert conn.execute("SELECT count(*) FROM iemk.ledger_round").fetchone()[0] == 0
    assert retry.requeue(conn, GKB, ["rejected"]) == []
    assert retry.requeue(conn, GKB, ["failed"], code="TRANSPORT") == sorted(ids)
    assert set(_rows(conn)) == {("valid", 2, 0, 1, "REQUEUED")}        # a new round, the ladder afresh
    assert _statuses(conn) == {"Подписан"}
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        cfg = _settings(callback.url)
        with _client(emulator.url, dev_keys) as iemk:
            report = send.send(dsn, ids, cfg, iemk, patients_first=False)
        assert report.accepted_now == len(ids)
        wait_answers(conn, report.sent)
        replies.write_back(conn, GKB, ids)
    assert _statuses(conn) == {"Сохранен в ИЭМК"}
    for ledger_id in ids:
        [earlier] = ledger.rounds(conn, ledger_id)
        assert (earlier.round, earlier.state, earlier.error_code) == (0, "failed", "TRANSPORT")
        assert earlier.message_id == old_ids[ledger_id]
        assert earlier.last_error.startswith("не удалось передать документ в ИЭМК за 2 попыток")
        now = conn.execute("SELECT message_id FROM iemk.ledger WHERE id = %s", (ledger_id,)).fetchone()[0]
        assert now != earlier.message_id


def test_requeue_refuses_a_state_that_is_not_ended_and_an_unknown_code(db):
    _, conn = db
    with pytest.raises(errors.ConfigurationError, match="failed, rejected"):
        retry.requeue(conn, GKB, ["sent"])
    with pytest.raises(errors.ConfigurationError, match="NOPE"):
        retry.requeue(conn, GKB, ["failed"], code="NOPE")


# -- lost answers ----------------------------------------------------------------------------------------------

def _send_with_lost_answers(dsn, conn, dev_keys, flk_packs, cfg_changes=None):
    """Every document sent; ИЭМК registers them, but no answer ever comes."""
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, faults=LOST), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        cfg = _settings(callback.url, **(cfg_changes or {}))
        ids = _ids(conn, cfg)
        with _client(emulator.url, dev_keys) as iemk:
            report = send.send(dsn, ids, cfg, iemk, patients_first=False)
        assert report.accepted_now == len(ids)
        _wait_lost(emulator, len(ids))
    return ids


def _wait_lost(emulator, count: int) -> None:
    deadline = time.monotonic() + 15
    while emulator.emulator.stats()["replies_lost"] < count:
        assert time.monotonic() < deadline, "the emulator did not lose the replies"
        time.sleep(0.05)


def test_a_lost_answer_is_found_stored_by_iti18_after_the_wait(db, dev_keys, flk_packs):
    dsn, conn = db
    ids = _send_with_lost_answers(dsn, conn, dev_keys, flk_packs)
    assert _statuses(conn) == {"Передан в ИЭМК"}
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs), dsn) as emulator:
        cfg = _settings("http://127.0.0.1:9/cb").with_iemk_url(emulator.url)
        with _client(emulator.url, dev_keys) as iemk:
            early = lost.recover_lost(conn, iemk, cfg, GKB)              # not overdue yet: untouched
            assert early["overdue"] == 0 and _statuses(conn) == {"Передан в ИЭМК"}
            later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=cfg.lost_answer_hours) + HOUR
            counts = lost.recover_lost(conn, iemk, cfg, GKB, now=later)
    assert counts == {"overdue": len(ids), "stored": len(ids), "resent": 0, "failed": 0, "lookup_failed": 0}
    assert _statuses(conn) == {"Сохранен в ИЭМК"}


def test_a_lost_answer_for_a_document_iemk_lacks_is_sent_again_then_ends_after_the_ladder(db, dev_keys,
                                                                                           flk_packs):
    dsn, conn = db
    ladder = {"retry_ladder": (HOUR,)}
    ids = _send_with_lost_answers(dsn, conn, dev_keys, flk_packs, ladder)
    missing = conn.execute("SELECT id, unique_id, message_id FROM iemk.ledger WHERE id = %s", (ids[0],)).fetchone()
    conn.execute("DELETE FROM emulator.document WHERE unique_id = %s", (missing[1],))   # ИЭМК never registered it
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs), dsn) as emulator:
        cfg = _settings("http://127.0.0.1:9/cb", **ladder).with_iemk_url(emulator.url)
        with _client(emulator.url, dev_keys) as iemk:
            counts = lost.recover_lost(conn, iemk, cfg, GKB, now=later)
    assert (counts["stored"], counts["resent"]) == (len(ids) - 1, 1)
    assert conn.execute("SELECT state, resend_round, retry_step, error_code FROM iemk.ledger WHERE id = %s",
                        (missing[0],)).fetchone() == ("valid", 1, 1, "NO_ANSWER")
    [earlier] = ledger.rounds(conn, missing[0])
    assert (earlier.state, earlier.message_id) == ("sent", missing[2])
    # sent again in the new round (a new MessageID); its answer is lost again and ИЭМК again lacks it: the end
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, faults=LOST), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        cfg = _settings(callback.url, **ladder).with_iemk_url(emulator.url)
        with _client(emulator.url, dev_keys) as iemk:
            report = send.send(dsn, [missing[0]], cfg, iemk, patients_first=False)
            assert report.sent == [missing[0]]
            resent_mid = conn.execute("SELECT message_id FROM iemk.ledger WHERE id = %s", (missing[0],)).fetchone()
            assert resent_mid[0] != missing[2]
            _wait_lost(emulator, len(ids) + 1)              # ИЭМК processed it (and lost the answer) …
            conn.execute("DELETE FROM emulator.document WHERE unique_id = %s", (missing[1],))   # … but lacks it
            counts = lost.recover_lost(conn, iemk, cfg, GKB, now=later + dt.timedelta(hours=7))
    assert counts["failed"] == 1
    state, code, status = conn.execute(
        "SELECT l.state, l.error_code, d.status FROM iemk.ledger l JOIN mis.semd_document d ON d.id = l.document_id"
        " WHERE l.id = %s", (missing[0],)).fetchone()
    assert (state, code) == ("failed", "NO_ANSWER")
    assert status.startswith("Ошибка: ИЭМК не ответила на документ, переданный ") and " … " in status


def test_a_lookup_that_fails_changes_nothing_and_says_why(db, dev_keys, flk_packs, monkeypatch):
    dsn, conn = db
    ids = _send_with_lost_answers(dsn, conn, dev_keys, flk_packs)
    monkeypatch.setattr(queries, "QUERY_RETRY_DELAYS", (0.0, 0.0))
    down = FaultProfile.load('{"seed": 1, "operations": {"iti18": {"http_503": 1.0}}}')
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, faults=down), dsn) as emulator:
        cfg = _settings("http://127.0.0.1:9/cb").with_iemk_url(emulator.url)
        with _client(emulator.url, dev_keys) as iemk:
            counts = lost.recover_lost(conn, iemk, cfg, GKB, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
            with pytest.raises(client.CallError, match=r"ITI-18.*попыток: 3"):
                queries.find_by_unique_ids(iemk, cfg, ["x"])
    assert counts["lookup_failed"] == len(ids) and counts["stored"] == 0
    assert _statuses(conn) == {"Передан в ИЭМК"}


# -- reconcile ---------------------------------------------------------------------------------------------------

def _deliver(dsn, conn, ids, cfg, iemk):
    report = send.send(dsn, ids, cfg, iemk, patients_first=False)
    assert report.accepted_now == len(ids)
    wait_answers(conn, report.sent)
    replies.write_back(conn, GKB, ids)


def test_reconcile_never_requeues_a_version_a_later_stored_version_replaced(db, dev_keys, flk_packs, monkeypatch,
                                                                           caplog):
    """Version 2 replaces version 1 (RPLC): ИЭМК deprecates version 1, reconcile lists it as held and re-queues
    nothing; even a registry that no longer lists it does not make us resend it. ITI-18 faults are retried."""
    from iemk_etl import periods
    from iemk_etl.pipeline import forming, sign
    from iemk_etl.signing.keystore import KeyStore

    dsn, conn = db
    monkeypatch.setattr(queries, "QUERY_RETRY_DELAYS", (0.0, 0.0, 0.0))
    flaky = FaultProfile.load('{"seed": 1, "operations": {"iti18": {"http_503": 0.5}}}')
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, faults=flaky), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        cfg = _settings(callback.url).with_iemk_url(emulator.url)
        with _client(emulator.url, dev_keys) as iemk:
            _deliver(dsn, conn, _ids(conn, cfg), cfg, iemk)
            local_uid, created = conn.execute(
                "SELECT local_uid, created_at FROM mis.semd_document WHERE mo_oid = %s AND kind_code = 42"
                " AND status = 'Сохранен в ИЭМК' ORDER BY local_uid LIMIT 1", (GKB,)).fetchone()
            conn.execute("UPDATE mis.visit SET conclusion = 'Диагноз уточнён после консультации'"
                         " WHERE mo_oid = %s AND local_id = %s", (GKB, local_uid.removeprefix("42-")))
            day = created.astimezone(demo_data.MSK).date()
            bounds = periods.day_bounds(day, day, cfg.timezone)
            assert len(forming.form_period(conn, GKB, *bounds, {42}).new_versions) == 1
            second = sign.sign_period(conn, KeyStore(cfg), GKB, *bounds, [42]).signed
            _deliver(dsn, conn, validate.validate(conn, extract.extract_documents(conn, GKB, second), cfg), cfg,
                     iemk)
            v1, v2 = conn.execute("SELECT l.unique_id FROM iemk.ledger l JOIN mis.semd_document d"
                                  " ON d.id = l.document_id WHERE d.local_uid = %s AND l.state = 'stored'"
                                  " ORDER BY l.version", (local_uid,)).fetchall()
            held = dict(conn.execute("SELECT unique_id, status FROM emulator.document").fetchall())
            assert (held[v1[0]], held[v2[0]]) == ("Deprecated", "Approved")
            wide = (PERIOD[0] - dt.timedelta(days=30), PERIOD[1] + dt.timedelta(days=30))
            rounds = conn.execute("SELECT sum(resend_round) FROM iemk.ledger").fetchone()[0]
            frame = reconcile.reconcile(conn, iemk, cfg, GKB, *wide)
            assert "missing_in_iemk" not in set(frame["finding"])
            # a registry that drops replaced versions: version 1 still is not resent; a lost current one is
            other = conn.execute("SELECT unique_id FROM iemk.ledger WHERE state = 'stored' AND unique_id <> ALL(%s)"
                                 " ORDER BY id LIMIT 1", ([v1[0], v2[0]],)).fetchone()[0]
            conn.execute("DELETE FROM emulator.document WHERE unique_id = ANY(%s)", ([v1[0], other],))
            frame = reconcile.reconcile(conn, iemk, cfg, GKB, *wide)
    assert list(frame.loc[frame["finding"] == "missing_in_iemk", "unique_id"]) == [other]
    assert conn.execute("SELECT sum(resend_round) FROM iemk.ledger").fetchone()[0] == rounds + 1
    # ITI-18 met faults, and the retries carried reconcile through them
    assert any("ITI-18" in r.getMessage() and "Сервис временно недоступен" in r.getMessage() for r in caplog.records)
