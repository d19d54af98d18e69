"""Send: each valid document once to ИЭМК (ITI-41), its patient first; the verdict goes to the ledger."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

import psycopg

from iemk_etl import errors
from iemk_etl.errors import ConfigurationError
from iemk_etl.pipeline import guard, outcomes, patients, retry
from iemk_etl.protocol.xds import submit
from iemk_etl.semd.header import local_root
from iemk_etl.settings import Settings
from iemk_etl.store import db, inbox, ledger
from iemk_etl.store.ledger import State
from iemk_etl.store.mis import exchange
from iemk_etl.transport import client

log = logging.getLogger(__name__)


@dataclass
class SendReport:
    sent: list[int] = field(default_factory=list)          # ledger ids sent by this call, awaiting an answer
    accepted_now: int = 0
    rejected: int = 0
    held: int = 0                                           # refused for a cause on our side: goes once fixed
    transient: int = 0
    failed: int = 0
    waiting_for_patient: int = 0
    called: list[int] = field(default_factory=list)        # ledger ids whose ITI-41 went out (and was recorded) now

    def counts(self) -> dict[str, int]:
        return {"awaiting": len(self.sent), "accepted_now": self.accepted_now, "rejected": self.rejected,
                "held": self.held, "transient": self.transient, "failed": self.failed,
                "waiting_for_patient": self.waiting_for_patient}


def send(dsn: str, ids: list[int], settings: Settings, iemk: client.IemkClient, *,
         patients_first: bool = True) -> SendReport:
    """Send every valid document among ``ids`` once; the ones already sent are only reported.

    With ``patients_first`` a document waits until ИЭМК holds its patient's current data (patients.feed).
    Each document's outcome is committed before the next one goes (an autocommit connection, one transaction per
    document holding only that row's lock across its HTTP call), and an error on one document ends or holds that
    document only (guard.each)."""
    if not settings.callback_url:
        raise ConfigurationError("не задан IEMK_CALLBACK_URL: ИЭМК некуда отправлять асинхронные ответы")
    report = SendReport()
    with db.connect(dsn, autocommit=True) as conn:
        for ledger_id in ids:
            with guard.each(conn, "send", ledger_id, functools.partial(_record_failure, conn, ledger_id, report)):
                _send_if_ready(conn, ledger_id, settings, iemk, report, patients_first)
        # Only what this call sent is awaited: documents sent by earlier runs take the lost-answer path.
        report.sent = ledger.ids_in_states(conn, report.called, (State.SENT,))
    log.info("send: %s", report.counts())
    return report


def _send_if_ready(conn: psycopg.Connection, ledger_id: int, settings: Settings, iemk: client.IemkClient,
                   report: SendReport, patients_first: bool) -> None:
    if patients_first and not patients.registered(conn, ledger_id):
        ledger.note_waiting(conn, ledger_id, "пациент ещё не зарегистрирован в ИЭМК")
        report.waiting_for_patient += 1
        return
    _send_one(conn, ledger_id, settings, iemk, report)


def _send_one(conn: psycopg.Connection, ledger_id: int, settings: Settings, iemk: client.IemkClient,
              report: SendReport) -> None:
    # On the autocommit connection of ``send`` this is a transaction of its own, committed before the next document:
    # the row lock is held across this document's HTTP call only, so a concurrent run (backfill overlap) skips it.
    with conn.transaction():
        row = exchange.lock_ledger_submission(conn, ledger_id)
        if row is None:
            return
        mid = ledger.message_id(row.mo_oid, row.unique_id, row.version, row.content_hash, row.resend_round)
        submission = submit.Submission(
            unique_id=row.unique_id, mo_oid=row.mo_oid, mo_name=row.mo_name, patient_local_id=row.patient_local_id,
            kind_code=row.kind_code, created_at=row.created_at,
            author=submit.AuthorRef(row.author_snils, row.author_family, row.author_given, row.author_patronymic),
            document=row.cda,
            submission_set_id=f"{local_root(row.mo_oid, 50, settings.mis_number)}.{ledger_id}.{row.version}",
            replaces=row.replaces,
            layout=settings.xds_metadata_layout,
            repository_unique_id=settings.repository_unique_id,
            source_id=f"{row.mo_oid}.{settings.mis_number}",      # our МИС instance (local_root's arcs)
        )
        result = iemk.provide_and_register(submission, message_id=mid, reply_to=settings.callback_url or "",
                                           ledger_id=ledger_id)
        ledger.record_attempt(conn, ledger_id, mid)
        inbox.record_sent(conn, mid, ledger_id)     # its answers are ours, this round and after (callback rule)
        _record(conn, ledger_id, row.attempts + 1, result, settings, report)
    report.called.append(ledger_id)


def _record_failure(conn: psycopg.Connection, ledger_id: int, report: SendReport, kind: errors.ErrorKind,
                    text: str) -> None:
    """An exception on this document (its data, a bug, the client): its transaction was rolled back, so the POST,
    if it went out, is repeated under the same MessageID by a later run — safe (ledger.message_id)."""
    if not ledger.ids_in_states(conn, [ledger_id], (State.VALID,)):
        return      # not a document waiting to be sent (e.g. sent already): its recorded state stands
    if kind.final:
        # The document cannot make a request (e.g. a kind ИЭМК has no template for): this version is finished.
        ledger.set_state(conn, ledger_id, State.INVALID, error=text, error_code=kind.code)
        report.failed += 1
    elif kind.holds:
        # A bug or our configuration: held, visibly, and sent by itself once fixed; the batch goes on.
        ledger.set_state(conn, ledger_id, State.VALID, error=text, error_code=kind.code)
        report.held += 1
    else:
        ledger.note_transient(conn, ledger_id, text, kind.code)
        report.transient += 1
        return
    outcomes.log_refusal(conn, ledger_id, kind.code, "send")


def _record(conn: psycopg.Connection, ledger_id: int, attempts: int, result: client.CallResult,
            settings: Settings, report: SendReport) -> None:
    if result.verdict is client.Verdict.ACCEPTED:
        ledger.set_state(conn, ledger_id, State.SENT)
        report.accepted_now += 1
    elif result.verdict is client.Verdict.REJECTED:
        ledger.set_state(conn, ledger_id, State.REJECTED, error=result.error, error_code=result.code)
        report.rejected += 1
        outcomes.log_refusal(conn, ledger_id, result.code, "send")
    elif result.verdict is client.Verdict.HELD:
        # Our settings, certificate or clock: the document waits, visibly, and goes by itself once fixed.
        ledger.set_state(conn, ledger_id, State.VALID, error=result.error, error_code=result.code)
        report.held += 1
        outcomes.log_refusal(conn, ledger_id, result.code, "send")
    else:
        # Transport or ИЭМК trouble: the next try waits a step of the backoff ladder; past its last step, the end.
        end = retry.next_try(conn, ledger_id, settings.retry_ladder, result.error, result.code or errors.TRANSPORT.code)
        if end is None:
            report.transient += 1
            return
        ledger.set_state(conn, ledger_id, State.FAILED, error_code=errors.TRANSPORT.code,
                         error=f"не удалось передать документ в ИЭМК за {end.tries} попыток "
                               f"({end.dates(settings.timezone)}): {result.error}")
        report.failed += 1
        outcomes.log_refusal(conn, ledger_id, errors.TRANSPORT.code, "send")


def hold_for_signing_key(dsn: str, ids: list[int], problem: str) -> int:
    """The request-signing certificate cannot be used: say so on every document waiting to be sent."""
    text = f"сертификат ЭП для подписания запросов к ИЭМК не может быть использован: {problem}"
    with db.connect(dsn, autocommit=True) as conn:
        waiting = ledger.ids_in_states(conn, ids, (State.VALID,))
        for ledger_id in waiting:
            with conn.transaction():
                ledger.set_state(conn, ledger_id, State.VALID, error=text, error_code=errors.SIGNING_KEY.code)
                outcomes.log_refusal(conn, ledger_id, errors.SIGNING_KEY.code, "send")
    log.error("МО documents held back (%d): %s", len(waiting), problem)
    return len(waiting)
