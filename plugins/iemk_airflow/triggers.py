"""The reply wait's trigger: polls the ledger and the inbox for a run's asynchronous answers, in the triggerer.

It holds no worker slot and starts no pod while it waits (issue 14.5). The domain decides (replies.wait_state);
its synchronous database calls run in the event loop's executor so the triggerer's loop never blocks. Airflow
imports this class by its path in the triggerer: the package is installed there like everywhere else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from iemk_etl import settings as settings_mod
from iemk_etl.pipeline import replies
from iemk_etl.store import db

CLASSPATH = "iemk_airflow.triggers.RepliesTrigger"


class RepliesTrigger(BaseTrigger):
    """Fires once every document of ``ids`` has an answer, or ``timeout_seconds`` passed since the latest POST."""

    def __init__(self, ids: list[int], timeout_seconds: float, poll_seconds: float) -> None:
        super().__init__()
        self.ids = [int(i) for i in ids]
        self.timeout_seconds = float(timeout_seconds)
        self.poll_seconds = float(poll_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return CLASSPATH, {"ids": self.ids, "timeout_seconds": self.timeout_seconds,
                           "poll_seconds": self.poll_seconds}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        dsn = await _source_dsn()
        loop = asyncio.get_running_loop()
        polls = 0
        while True:
            polls += 1
            state = await loop.run_in_executor(None, _poll, dsn, self.ids, self.timeout_seconds)
            self.log.info("asynchronous answers: %d of %d (poll %d)", state.answered, state.awaited, polls)
            if state.done:
                yield TriggerEvent(event(state))
                return
            await asyncio.sleep(self.poll_seconds)


def event(state: replies.WaitState) -> dict[str, Any]:
    """Counts only: what the wait task returns to XCom."""
    return {"answered": state.answered, "awaited": state.awaited, "missing": state.missing,
            "timed_out": state.timed_out}


def _poll(dsn: str, ids: list[int], timeout_seconds: float) -> replies.WaitState:
    with db.connect(dsn, autocommit=True) as conn:
        return replies.wait_state(conn, ids, dt.timedelta(seconds=timeout_seconds))


async def _source_dsn() -> str:
    """As resources.source_dsn, with the triggerer's asynchronous connection lookup."""
    from iemk_airflow import resources

    cfg = settings_mod.load()
    if not cfg.source_conn_id:
        return await asyncio.get_running_loop().run_in_executor(None, db.resolve_dsn, cfg)
    from airflow.sdk import Connection

    c = await Connection.async_get(cfg.source_conn_id)
    return resources.dsn_from_parts(host=c.host, port=c.port, dbname=c.schema, user=c.login, password=c.password)
