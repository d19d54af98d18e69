"""Lost answers: a document «Передан в ИЭМК» whose asynchronous answer never came is asked for in ИЭМК.

After ``settings.lost_answer_hours`` without an answer (none in the inbox either), ITI-18 GetDocuments by its
uniqueId decides: ИЭМК holds it (Approved, or Deprecated by a later version) → «Сохранен в ИЭМК»; ИЭМК does not →
it is sent again in a new round (a new MessageID), one step of the backoff ladder; past the ladder's last step it
ends «Ошибка: ИЭМК не ответила на документ, переданный D1 … D2».
"""

from __future__ import annotations

import datetime as dt
import logging

import psycopg

from iemk_etl import errors
from iemk_etl.errors import IemkError
from iemk_etl.pipeline import outcomes, queries, retry
from iemk_etl.settings import Settings
from iemk_etl.store import ledger
from iemk_etl.store.ledger import State, Unanswered
from iemk_etl.transport.client import IemkClient

log = logging.getLogger(__name__)

RESEND_REASON = "ИЭМК не ответила на документ и не хранит его: передаётся повторно"
# How far back a document given up in transport is still looked up in ИЭМК (each run, until then).
GIVEN_UP_LOOKBACK = dt.timedelta(days=7)


def recover_lost(conn: psycopg.Connection, iemk: IemkClient, settings: Settings, mo_oid: str,
                 now: dt.datetime | None = None) -> dict[str, int]:
    """Look up the МО's documents whose answer is overdue and settle each; counts of what was done.

    A lookup that fails (ИЭМК away after the query's retries) changes nothing: the documents are tried next run."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(hours=settings.lost_answer_hours)
    overdue = ledger.sent_unanswered_before(conn, mo_oid, cutoff)
    counts = {"overdue": len(overdue), "stored": 0, "resent": 0, "failed": 0, "lookup_failed": 0}
    if not overdue:
        return counts
    held = _held_by_iemk(iemk, settings, mo_oid, overdue, "without an answer")
    if held is None:
        counts["lookup_failed"] = len(overdue)
        return counts
    for document in overdue:
        with conn.transaction():
            counts[_settle(conn, document, document.unique_id in held, settings)] += 1
    log.info("lost answers of МО %s: %s", mo_oid, counts)
    return counts


def recover_given_up(conn: psycopg.Connection, iemk: IemkClient, settings: Settings, mo_oid: str,
                     now: dt.datetime | None = None) -> int:
    """Documents that ended «не удалось передать» after transport errors in the last ``GIVEN_UP_LOOKBACK``: a POST
    that went out may have reached ИЭМК while every answer to it was lost (a reset, a broken answer, then a lost
    reply). ITI-18 decides; those ИЭМК holds become «Сохранен в ИЭМК», the others stay as they are. Returns how many
    were found stored; a failed lookup changes nothing."""
    since = (now or dt.datetime.now(dt.UTC)) - GIVEN_UP_LOOKBACK
    given_up = ledger.failed_in_transport_since(conn, mo_oid, since)
    if not given_up:
        return 0
    held = _held_by_iemk(iemk, settings, mo_oid, given_up, "given up")
    if held is None:
        return 0
    found = [d for d in given_up if d.unique_id in held]
    for document in found:
        with conn.transaction():
            ledger.set_state(conn, document.ledger_id, State.STORED)
    log.info("МО %s: %d of %d documents given up in transport are held by ИЭМК", mo_oid, len(found), len(given_up))
    return len(found)


def _held_by_iemk(iemk: IemkClient, settings: Settings, mo_oid: str, documents: list[Unanswered],
                  what: str) -> set[str] | None:
    """The uniqueIds of ``documents`` ИЭМК holds (ITI-18); None when the lookup failed (nothing is decided then)."""
    try:
        return set(queries.find_by_unique_ids(iemk, settings, [d.unique_id for d in documents]))
    except IemkError as exc:
        log.error("МО %s: %d documents %s could not be looked up in ИЭМК: %s", mo_oid, len(documents), what, exc)
        return None


def _settle(conn: psycopg.Connection, document: Unanswered, held: bool, settings: Settings) -> str:
    if held:
        # ИЭМК registers a document only after its checks passed: holding it is the Success we never heard.
        ledger.set_state(conn, document.ledger_id, State.STORED)
        return "stored"
    # The answer's wait was the ladder's wait: the new round is due at once.
    end = retry.next_try(conn, document.ledger_id, settings.retry_ladder, RESEND_REASON, errors.NO_ANSWER.code,
                         wait=False)
    if end is None:
        ledger.send_again(conn, document.ledger_id, reason=RESEND_REASON, code=errors.NO_ANSWER.code)
        return "resent"
    first, last = retry.when(end.since, settings.timezone), retry.when(document.last_sent_at, settings.timezone)
    ledger.set_state(conn, document.ledger_id, State.FAILED, error_code=errors.NO_ANSWER.code,
                     error=f"ИЭМК не ответила на документ, переданный {first} … {last}")
    outcomes.log_refusal(conn, document.ledger_id, errors.NO_ANSWER.code, "lost_answers")
    return "failed"
