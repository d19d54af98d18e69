"""Trying again: the backoff ladder across runs, and ended documents sent again in a new round.

A transient failure (the taxonomy's retry now / next run) climbs one step of ``settings.retry_ladder``: the document
waits that long (minutes within a run, then the next runs, up to days) and a run before that time does not send it.
Past the ladder's last step the caller ends the document «Ошибка» with the number of tries and their dates. A lost
answer (pipeline.lost) climbs the same ladder, so one document's whole delivery effort is bounded by it.

``requeue`` is the operator's way back: chosen ended documents (failed, rejected) go again in a new round — a new
MessageID, the ladder afresh — and the ledger keeps the rounds they ended (iemk.ledger_round).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg

from iemk_etl import errors, periods
from iemk_etl.errors import ConfigurationError
from iemk_etl.store import ledger
from iemk_etl.store.ledger import State

log = logging.getLogger(__name__)

REQUEUABLE = (State.FAILED, State.REJECTED)


@dataclass(frozen=True)
class LadderEnd:
    """The ladder is climbed: ``tries`` tries from ``since`` to ``until`` did not deliver the document."""
    tries: int
    since: dt.datetime
    until: dt.datetime

    def dates(self, tz: str) -> str:
        return f"с {when(self.since, tz)} по {when(self.until, tz)}"


def when(moment: dt.datetime, tz: str) -> str:
    """A moment as people here read it: local day and time."""
    return moment.astimezone(periods.zone(tz)).strftime("%d.%m.%Y %H:%M")


def next_try(conn: psycopg.Connection, ledger_id: int, ladder: Sequence[dt.timedelta], error: str, code: str, *,
             wait: bool = True) -> LadderEnd | None:
    """One more failed try of this document: the next one is scheduled a ladder step later (``wait=False``: due at
    once, the caller has waited already) and None is returned; with no step left, nothing changes and the end of
    the ladder is returned for the caller to end the document."""
    position = ledger.ladder_position(conn, ledger_id)
    if position.step >= len(ladder):
        now = dt.datetime.now(dt.UTC)
        return LadderEnd(position.step + 1, position.since or position.last_sent_at or now, now)
    ledger.climb_ladder(conn, ledger_id, ladder[position.step] if wait else None, error, code)
    return None


def requeue(conn: psycopg.Connection, mo_oid: str, states: Iterable[str] = ("failed",), *, code: str | None = None,
            start: dt.datetime | None = None, end: dt.datetime | None = None, dry_run: bool = False) -> list[int]:
    """Send the МО's ended documents (in ``states``, of error ``code``, signed in [start, end)) again in a new round;
    their ledger ids. ``dry_run`` only finds them. Each goes in a transaction of its own."""
    wanted = _states(states)
    if code is not None and not errors.known(code):
        raise ConfigurationError(f"код ошибки {code!r} не известен iemk-etl (см. iemk_etl/errors.py)")
    chosen = ledger.ended_ids(conn, mo_oid, wanted, code=code, start=start, end=end)
    if not dry_run:
        for ledger_id in chosen:
            with conn.transaction():
                ledger.send_again(conn, ledger_id, reason=errors.REQUEUED.title, code=errors.REQUEUED.code,
                                  restart_ladder=True)
    log.info("requeue МО %s %s%s: %d documents", mo_oid, [s.value for s in wanted], " (dry run)" if dry_run else "",
             len(chosen))
    return chosen


def _states(states: Iterable[str]) -> list[State]:
    allowed = {s.value for s in REQUEUABLE}
    chosen = []
    for name in states:
        if name not in allowed:
            raise ConfigurationError(f"повторно передаются только завершённые документы в состояниях "
                                     f"{', '.join(sorted(allowed))}, не {name!r}")
        chosen.append(State(name))
    return chosen
