"""The emulator's asynchronous replies delivered by several senders at once: each exactly once."""

import time

import psycopg
import pytest

from iemk_etl import settings
from iemk_etl.cli.servers import emulator_config
from iemk_etl.emulator.server import EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.emulator.store import Store, Submission
from iemk_etl.protocol.xds import submit
from iemk_etl.transport.callback import CallbackServer

REPLIES = 120


def _pending(dsn: str, reply_to: str, count: int) -> None:
    """``count`` accepted submissions, each with its reply due now (as ``receive_document_set`` records them). No
    document: each is answered at once with a failure, so the test is about delivery, not ФЛК."""
    store = Store(dsn)
    for n in range(count):
        store.accept_submission(Submission(f"urn:uuid:r-{n}", reply_to, f"u-{n}", "P-1", 42, None, None), "c",
                                submit.ACTION, 0)
    store.close()


def _wait_delivered(dsn: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FILTER (WHERE state <> 'pending') FROM emulator.reply").fetchone()
            if row and row[0] >= count:
                return
            time.sleep(0.05)
    pytest.fail("replies still pending")


def test_concurrent_senders_deliver_each_reply_exactly_once(fresh_dsn):
    """Two emulators on one database (two processes' worth), four sender threads each, race for the same queue."""
    with CallbackServer(fresh_dsn) as callback:
        _pending(fresh_dsn, callback.url, REPLIES)
        config = EmulatorConfig(reply_delay=0, reply_threads=4)
        with EmulatorServer(config, fresh_dsn), EmulatorServer(config, fresh_dsn):
            _wait_delivered(fresh_dsn, REPLIES)
    with psycopg.connect(fresh_dsn) as conn:
        states = conn.execute("SELECT state, attempts, count(*) FROM emulator.reply GROUP BY 1, 2").fetchall()
        # Every body the callback received is archived, a second copy of a reply included.
        posted, answered = conn.execute(
            "SELECT count(*), count(DISTINCT relates_to) FROM iemk.audit_exchange WHERE kind = 'reply'").fetchone()
        # Nothing was sent under these MessageIDs, so the callback keeps each reply in quarantine, counting posts.
        kept, hits = conn.execute("SELECT count(*), sum(hits) FROM iemk.reply_quarantine").fetchone()
    assert states == [("delivered", 1, REPLIES)]
    assert (posted, answered) == (REPLIES, REPLIES)
    assert (kept, hits) == (REPLIES, REPLIES)


def test_reply_threads_come_from_the_setting():
    assert emulator_config(settings.load({"IEMK_EMULATOR_REPLY_THREADS": "7"})).reply_threads == 7
    assert emulator_config(settings.load({})).reply_threads == 4
    assert emulator_config(settings.load({}), reply_threads=2).reply_threads == 2
    with pytest.raises(settings.SettingsError):
        settings.load({"IEMK_EMULATOR_REPLY_THREADS": "0"})
