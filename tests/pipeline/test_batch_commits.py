"""Commit granularity and poison documents: each document's state is committed before the next one goes, on the
default path (patients first), and an error on one document ends or holds that document only."""

import dataclasses
import datetime as dt

import psycopg
import pytest

from iemk_etl import errors, settings
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import extract, replies, send, validate
from iemk_etl.pipeline import patients as patient_step
from iemk_etl.signing import keys
from iemk_etl.store import integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

from exchange_helpers import wait_answers

GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 7, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 7, 4, tzinfo=demo_data.MSK))
UNKNOWN_KIND = 99999


@pytest.fixture
def world(fresh_dsn, flk_packs, dev_keys):
    """A МИС with signed documents, the emulator (which requires registered patients), the callback receiver, and
    the documents validated and their patients fed: ready for the default send path."""
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=5, days=3, seed=8, end=dt.date(2026, 7, 4), fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        config = EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, require_registered_patient=True)
        with EmulatorServer(config, fresh_dsn) as emulator, CallbackServer(fresh_dsn) as callback, \
                client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id="c",
                                  signer=keys.load_signer(*dev_keys), timeout=10) as iemk:
            cfg = dataclasses.replace(settings.load().with_iemk_url(emulator.url), callback_url=callback.url)
            ids = extract.extract(conn, GKB, *PERIOD)
            assert len(ids) >= 4
            yield conn, fresh_dsn, cfg, iemk, ids


def _ready(conn, cfg, iemk, ids) -> list[int]:
    valid = validate.validate(conn, ids, cfg)
    patient_step.feed(conn, GKB, valid, cfg, iemk)
    return valid


class Observer:
    """Wraps the client: before each ITI-41 call, looks at the ledger from a connection of its own."""

    def __init__(self, inner: client.IemkClient, dsn: str, ids: list[int], fail_on: dict[int, BaseException] = None):
        self.inner, self.dsn, self.ids = inner, dsn, ids
        self.sent_before: list[int] = []
        self.locked_before: list[int] = []
        self.fail_on = fail_on or {}

    def provide_and_register(self, submission, **kwargs):
        with psycopg.connect(self.dsn, autocommit=True) as other:
            self.sent_before.append(other.execute("SELECT count(*) FROM iemk.ledger WHERE id = ANY(%s)"
                                                  " AND state = 'sent'", (self.ids,)).fetchone()[0])
            free = other.execute("SELECT count(*) FROM (SELECT id FROM iemk.ledger WHERE id = ANY(%s)"
                                 " FOR UPDATE SKIP LOCKED) t", (self.ids,)).fetchone()[0]
            self.locked_before.append(len(self.ids) - free)
        call = len(self.sent_before)
        if call in self.fail_on:
            raise self.fail_on[call]
        return self.inner.provide_and_register(submission, **kwargs)


def _state(conn, ledger_id):
    return conn.execute("SELECT l.state, l.error_code, d.status FROM iemk.ledger l JOIN mis.semd_document d"
                        " ON d.id = l.document_id WHERE l.id = %s", (ledger_id,)).fetchone()


def test_each_document_is_committed_before_the_next_one_goes_on_the_default_path(world):
    conn, dsn, cfg, iemk, ids = world
    valid = _ready(conn, cfg, iemk, ids)
    observer = Observer(iemk, dsn, valid)
    report = send.send(dsn, valid, cfg, observer)             # patients_first=True: the DAG's and the CLI's path
    assert report.accepted_now == len(valid)
    # Another session sees each document's state as soon as it is sent, not when the batch ends.
    assert observer.sent_before == list(range(len(valid)))
    # And only the row being sent is locked, never the batch.
    assert observer.locked_before == [1] * len(valid)


def test_a_process_dying_mid_batch_keeps_what_was_sent_before(world):
    conn, dsn, cfg, iemk, ids = world
    valid = _ready(conn, cfg, iemk, ids)
    dying = Observer(iemk, dsn, valid, fail_on={3: KeyboardInterrupt("killed")})
    with pytest.raises(KeyboardInterrupt):
        send.send(dsn, valid, cfg, dying)
    states = [_state(conn, i)[0] for i in valid]
    assert states[:2] == ["sent", "sent"] and states[2:] == ["valid"] * (len(valid) - 2)
    again = send.send(dsn, valid, cfg, iemk)                   # the next run sends the rest, once
    assert again.accepted_now == len(valid) - 2 and sorted(again.sent) == valid[2:]


def test_an_unknown_kind_in_the_middle_ends_that_document_and_the_batch_goes_on(world):
    conn, dsn, cfg, iemk, ids = world
    poison = ids[len(ids) // 2]
    conn.execute("UPDATE iemk.ledger SET kind_code = %s WHERE id = %s", (UNKNOWN_KIND, poison))
    conn.execute("UPDATE mis.semd_document SET kind_code = %s WHERE id = (SELECT document_id FROM iemk.ledger"
                 " WHERE id = %s)", (UNKNOWN_KIND, poison))
    valid = _ready(conn, cfg, iemk, ids)
    assert poison not in valid
    report = send.send(dsn, valid, cfg, iemk)
    assert report.accepted_now == len(ids) - 1
    state, code, status = _state(conn, poison)
    assert (state, code) == ("invalid", errors.UNKNOWN_KIND.code)
    assert status == f"Ошибка: Вид СЭМД не поддерживается: код {UNKNOWN_KIND} по НСИ 1520"
    # The next run is not blocked by it: it validates and sends as usual, and the document stays ended.
    assert validate.validate(conn, ids, cfg) == sorted(valid)
    assert send.send(dsn, ids, cfg, iemk).accepted_now == 0
    assert _state(conn, poison)[0] == "invalid"


def test_a_document_failing_inside_the_send_ends_visibly_and_the_others_are_sent(world):
    """Validated first, then its kind turns unknown: the request cannot be built (inside provide_and_register)."""
    conn, dsn, cfg, iemk, ids = world
    valid = _ready(conn, cfg, iemk, ids)
    poison = valid[1]
    conn.execute("UPDATE iemk.ledger SET kind_code = %s WHERE id = %s", (UNKNOWN_KIND, poison))
    report = send.send(dsn, valid, cfg, iemk)
    assert (report.accepted_now, report.failed) == (len(valid) - 1, 1)
    assert poison not in report.sent and len(report.sent) == len(valid) - 1
    state, code, status = _state(conn, poison)
    assert (state, code) == ("invalid", errors.UNKNOWN_KIND.code)
    assert status.startswith("Ошибка: Вид СЭМД не поддерживается: код 99999")
    assert send.send(dsn, valid, cfg, iemk).accepted_now == 0      # a second run: nothing blocked, nothing repeated


def test_an_unexpected_client_exception_holds_that_document_until_it_is_fixed(world):
    conn, dsn, cfg, iemk, ids = world
    valid = _ready(conn, cfg, iemk, ids)
    broken = Observer(iemk, dsn, valid, fail_on={2: RuntimeError("сбой в коде клиента")})
    report = send.send(dsn, valid, cfg, broken)
    poison = valid[1]
    assert (report.accepted_now, report.held) == (len(valid) - 1, 1)
    state, code, status = _state(conn, poison)
    assert (state, code) == ("valid", errors.INTERNAL.code)
    assert status == "Ошибка: Внутренняя ошибка iemk-etl (сообщите администратору): RuntimeError: сбой в коде клиента"
    # Once the software is fixed, the same document goes by itself; nothing else is sent twice.
    again = send.send(dsn, valid, cfg, iemk)
    assert again.sent == [poison] and again.accepted_now == 1
    assert _state(conn, poison)[:2] == ("sent", None)


def test_a_reply_that_cannot_be_applied_leaves_the_other_replies_applied(world, monkeypatch):
    conn, dsn, cfg, iemk, ids = world
    valid = _ready(conn, cfg, iemk, ids)
    report = send.send(dsn, valid, cfg, iemk)
    wait_answers(conn, report.sent)
    poison = report.sent[0]
    real = replies._apply

    def apply(conn_, ledger_id, outcome, counts):
        if ledger_id == poison:
            raise KeyError("unforeseen")
        return real(conn_, ledger_id, outcome, counts)

    monkeypatch.setattr(replies, "_apply", apply)
    counts = replies.write_back(conn, GKB, valid)
    assert counts["replies_stored"] == len(valid) - 1
    assert _state(conn, poison)[0] == "sent"                       # unapplied, its answer kept for the next run
    monkeypatch.setattr(replies, "_apply", real)
    assert replies.write_back(conn, GKB, valid)["replies_stored"] == 1



def test_the_reply_wait_awaits_only_what_this_run_sent(world):
    """Documents an earlier run sent and ИЭМК never answered (their reply lost) do not hold this run's wait."""
    conn, dsn, cfg, iemk, ids = world
    valid = _ready(conn, cfg, iemk, ids)
    lost = dataclasses.replace(cfg, callback_url="http://127.0.0.1:9/cb")    # their answers go nowhere
    earlier = send.send(dsn, valid[:2], lost, iemk)
    assert replies.replies_pending(conn, earlier.sent) == (0, 2)
    now = send.send(dsn, valid, cfg, iemk)                     # tonight: the old ones are in scope, still open
    assert now.sent == valid[2:]
    wait_answers(conn, now.sent)                             # done without the two that will never be answered
    assert replies.replies_pending(conn, now.sent) == (len(valid) - 2, len(valid) - 2)
