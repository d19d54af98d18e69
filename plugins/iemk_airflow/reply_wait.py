"""The export DAG's wait for ИЭМК's asynchronous answers, in the mode IEMK_REPLY_WAIT chooses.

``deferrable`` (the default): ``WaitForReplies`` looks once, then defers to ``triggers.RepliesTrigger`` in the
triggerer (no worker slot, no pod per poke). ``reschedule``: a sensor whose pokes are rescheduled.

In both modes the wait ends when every document the run sent has an answer or when IEMK_REPLY_TIMEOUT_SECONDS
passed since the latest POST; a timeout is not a failure of the wait: the statuses are written back after it and
``check_answers`` fails the run, saying how many answers are missing. Airflow's own timeout on the wait is only a
backstop, set beyond ours.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from airflow.sdk import BaseOperator, PokeReturnValue, task

from iemk_airflow.lazy import lazy
from iemk_etl import settings as settings_mod
from iemk_etl.settings import Settings

# Imported when the wait runs, never when the DAG file is parsed (see iemk_airflow.lazy).
resources = lazy("iemk_airflow.resources")
triggers = lazy("iemk_airflow.triggers")
chunks = lazy("iemk_etl.pipeline.chunks")
replies = lazy("iemk_etl.pipeline.replies")
db = lazy("iemk_etl.store.db")

log = logging.getLogger(__name__)

TASK_ID = "wait_for_replies"


def _state(ids: list[int], timeout_seconds: float) -> replies.WaitState:
    with db.connect(resources.source_dsn(settings_mod.load()), autocommit=True) as conn:
        return replies.wait_state(conn, ids, dt.timedelta(seconds=timeout_seconds))


def _ids(sent: Iterable[list[int] | None] | None) -> list[int]:
    """The union of the send chunks' results (a mapped task's results arrive as one sequence)."""
    return chunks.union(sent or [])


class WaitForReplies(BaseOperator):
    """Defers to the trigger unless the answers are all in (or the timeout passed) at the first look."""

    template_fields = ("sent",)

    def __init__(self, *, sent: Any, timeout_seconds: float, poll_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent = sent
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds

    def execute(self, context: Any) -> dict[str, Any]:
        ids = _ids(self.sent)
        state = _state(ids, self.timeout_seconds)
        log.info("asynchronous answers: %d of %d", state.answered, state.awaited)
        if state.done:
            return triggers.event(state)
        # The trigger's own end is ours (a timeout event); Airflow's is a backstop against a stuck trigger.
        self.defer(trigger=triggers.RepliesTrigger(ids, self.timeout_seconds, self.poll_seconds),
                   method_name="execute_complete",
                   timeout=dt.timedelta(seconds=self.timeout_seconds + backstop_margin(self.poll_seconds)))
        return {}   # not reached: defer raises

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        log.info("asynchronous answers: %(answered)d of %(awaited)d (timed out: %(timed_out)s)", event)
        return event


def backstop_margin(poll_seconds: float) -> float:
    return max(10 * poll_seconds, 300.0)


@task.sensor(task_id=TASK_ID, mode="reschedule")
def _wait_rescheduled(sent: Any, timeout_seconds: float) -> PokeReturnValue:
    state = _state(_ids(sent), timeout_seconds)
    log.info("asynchronous answers: %d of %d", state.answered, state.awaited)
    return PokeReturnValue(is_done=state.done, xcom_value=triggers.event(state) if state.done else None)


def wait_for_replies(sent: Any, settings: Settings, **task_args: Any) -> Any:
    """The wait task over the union of ``sent`` (the mapped send's output), in the configured mode."""
    timeout = settings.reply_timeout_seconds
    backstop = dt.timedelta(seconds=timeout + backstop_margin(settings.reply_poke_seconds))
    if settings.reply_wait == "reschedule":
        return _wait_rescheduled.override(poke_interval=settings.reply_poke_seconds, timeout=backstop.total_seconds(),
                                          **task_args)(sent, timeout)
    return WaitForReplies(task_id=TASK_ID, sent=sent, timeout_seconds=timeout,
                          poll_seconds=settings.reply_poke_seconds, **task_args).output
