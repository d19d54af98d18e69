"""Replies: ИЭМК's asynchronous answers (stored by the callback receiver) turned into document states, and the
statuses written back to the МИС."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import psycopg

from iemk_etl import errors
from iemk_etl.errors import IemkError
from iemk_etl.pipeline import guard
from iemk_etl.protocol import soap
from iemk_etl.protocol.xds.common import RegistryResponse, read_registry_response
from iemk_etl.store import inbox, ledger
from iemk_etl.store.ledger import State

log = logging.getLogger(__name__)

BUSY_ROUNDS = 5


def replies_pending(conn: psycopg.Connection, ids: list[int]) -> tuple[int, int]:
    """(answered, awaited) among the documents of ``ids`` that wait for ИЭМК's asynchronous answer."""
    inbox.admit_quarantined(conn)       # an answer that beat the commit of its send counts once the send is recorded
    return inbox.answered_of_sent(conn, ids)


@dataclass(frozen=True)
class WaitState:
    """Where the wait for a run's asynchronous answers stands."""
    answered: int
    awaited: int
    timed_out: bool         # the timeout passed since the latest POST among them

    @property
    def done(self) -> bool:
        return self.answered >= self.awaited or self.timed_out

    @property
    def missing(self) -> int:
        return max(self.awaited - self.answered, 0)


class MissingAnswersError(IemkError):
    """ИЭМК did not answer some documents of the run in time: the run is not a success, and they take the
    lost-answer path (lost.recover_lost)."""

    default_kind = errors.NO_ANSWER


def wait_state(conn: psycopg.Connection, ids: list[int], timeout: dt.timedelta) -> WaitState:
    """The answers to ``ids`` so far, and whether ``timeout`` passed since the latest of their POSTs (measured on
    the database's clock, so a retried wait, a rescheduled poke and the triggerer all agree)."""
    answered, awaited = replies_pending(conn, ids)
    last_sent, now = ledger.last_sent_of(conn, ids)
    return WaitState(answered, awaited, last_sent is not None and now - last_sent >= timeout)


def settle_missing(conn: psycopg.Connection, ids: list[int], timeout: dt.timedelta) -> int:
    """After the statuses were written: the documents of ``ids`` still awaiting an answer get a note saying so
    (the state stays «Передан в ИЭМК»; lost.recover_lost looks them up in ИЭМК later); how many they are."""
    hours = timeout.total_seconds() / 3600
    text = (f"ответ ИЭМК не получен за {hours:g} ч после передачи; документ будет запрошен в ИЭМК (ITI-18) "
            "и при необходимости передан повторно")
    with conn.transaction():
        return len(ledger.note_unanswered(conn, ids, text))


def missing_answers_error(missing: int) -> MissingAnswersError:
    return MissingAnswersError(f"нет ответа ИЭМК на {missing} документ(ов): они ожидают проверки в ИЭМК "
                               "(поиск потерянных ответов в следующем запуске)")


def apply_replies(conn: psycopg.Connection, mo_oid: str) -> dict[str, int]:
    """Turn the stored asynchronous answers into document states, for every sent document of the МО."""
    counts = {"stored": 0, "rejected": 0, "unreadable": 0}
    guard.require_autocommit(conn, "replies")
    # Only the inbox moves states, and it holds answers to MessageIDs we sent; an answer that came before its send
    # was recorded waited in quarantine and joins them now.
    admitted = inbox.admit_quarantined(conn)
    if admitted:
        counts["admitted"] = admitted
    for answers in inbox.answers_to_sent(conn, mo_oid):
        # Each answer's effect is committed on its own; one that cannot be applied (a bug) stays unprocessed, its
        # document says why, and the other answers are applied.
        with guard.each(conn, "replies", answers.ledger_id,
                        lambda _kind, text, lid=answers.ledger_id: ledger.note_error(conn, lid, text)):
            _apply_answers(conn, answers, counts)
    log.info("replies applied for МО %s: %s", mo_oid, counts)
    return counts


def _apply_answers(conn: psycopg.Connection, answers: inbox.Answers, counts: dict[str, int]) -> None:
    ledger_id = answers.ledger_id
    outcome = _outcome(answers.bodies)
    with conn.transaction():
        if outcome is None:
            counts["unreadable"] += 1
            ledger.note_error(conn, ledger_id, "асинхронный ответ ИЭМК не удалось разобрать")
        else:
            _apply(conn, ledger_id, outcome, counts)
        inbox.mark_processed(conn, answers.message_ids)


def _apply(conn: psycopg.Connection, ledger_id: int, outcome: RegistryResponse, counts: dict[str, int]) -> None:
    """One answer's effect, decided by the error taxonomy on its codes."""
    kind = None if outcome.success else errors.of_registry_errors([e.error_code for e in outcome.errors])
    if kind is None or kind is errors.DUPLICATE:
        # A "duplicate" of the same MessageID carries the same bytes (see ledger.message_id): this very document
        # is in ИЭМК already, delivered by an earlier attempt.
        ledger.set_state(conn, ledger_id, State.STORED)
        counts["stored"] += 1
    elif kind.transient and ledger.resend_round(conn, ledger_id) < BUSY_ROUNDS:
        # ИЭМК was busy or failing, not refusing: send again next run (a new round, a new MessageID).
        ledger.send_again(conn, ledger_id, reason=outcome.error_text(), code=kind.code)
        counts["busy_requeued"] = counts.get("busy_requeued", 0) + 1
    elif kind.holds:
        # Refused for a cause on our side (registration, certificate): sent again once it is fixed.
        ledger.send_again(conn, ledger_id, reason=outcome.error_text(), code=kind.code)
        counts["held"] = counts.get("held", 0) + 1
    else:
        ledger.set_state(conn, ledger_id, State.REJECTED, error=outcome.error_text(), error_code=kind.code)
        counts["rejected"] += 1


def _outcome(bodies: list[bytes]) -> RegistryResponse | None:
    """One verdict from all answers to one MessageID: a Success wins over a repeat's complaint."""
    responses = []
    for body in bodies:
        try:
            message = soap.parse(body)
            if message.body is not None:
                responses.append(read_registry_response(message.body))
        except (soap.SoapFormatError, ValueError):
            continue
    for response in responses:
        if response.success:
            return response
    return responses[0] if responses else None


def write_back(conn: psycopg.Connection, mo_oid: str, ids: list[int], *,
               quarantine_days: int | None = None) -> dict[str, int]:
    """Apply the answers, repair drifted МИС statuses; counts of what was done and where ``ids`` stand now.

    With ``quarantine_days`` (IEMK_QUARANTINE_DAYS) quarantined replies older than that are purged first."""
    counts: dict[str, int] = {}
    if quarantine_days is not None:
        counts["quarantine_purged"] = inbox.purge_quarantine(conn, quarantine_days)
    counts.update({f"replies_{k}": v for k, v in apply_replies(conn, mo_oid).items()})
    counts.update({f"quarantined_{k}": v for k, v in inbox.quarantined(conn).items()})
    with conn.transaction():
        counts["statuses_repaired"] = ledger.sync_statuses(conn, ids)
    counts.update({f"now_{k}": v for k, v in state_counts(conn, ids).items()})
    return counts


def state_counts(conn: psycopg.Connection, ids: list[int]) -> dict[str, int]:
    return ledger.state_counts(conn, ids)
