"""Send: each valid document once to ИЭМК (ITI-41), its patient first; the verdict goes to the ledger."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg

from iemk_etl import errors
from iemk_etl.errors import ConfigurationError
from iemk_etl.pipeline import patients
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
    sent: list[int] = field(default_factory=list)          # ledger ids now awaiting an answer
    accepted_now: int = 0
    rejected: int = 0
    held: int = 0                                           # refused for a cause on our side: goes once fixed
    transient: int = 0
    failed: int = 0
    waiting_for_patient: int = 0

    def counts(self) -> dict[str, int]:
        return {"awaiting": len(self.sent), "accepted_now": self.accepted_now, "rejected": self.rejected,
                "held": self.held, "transient": self.transient, "failed": self.failed,
                "waiting_for_patient": self.waiting_for_patient}


def send(dsn: str, ids: list[int], settings: Settings, iemk: client.IemkClient, *,
         patients_first: bool = True) -> SendReport:
    """Send every valid document among ``ids`` once; the ones already sent are only reported.

    With ``patients_first`` a document waits until ИЭМК holds its patient's current data (patients.feed)."""
    if not settings.callback_url:
        raise ConfigurationError("не задан IEMK_CALLBACK_URL: ИЭМК некуда отправлять асинхронные ответы")
    report = SendReport()
    with db.connect(dsn) as conn:
        for ledger_id in ids:
            if patients_first and not patients.registered(conn, ledger_id):
                ledger.note_waiting(conn, ledger_id, "пациент ещё не зарегистрирован в ИЭМК")
                report.waiting_for_patient += 1
                continue
            _send_one(conn, ledger_id, settings, iemk, report)
        report.sent = ledger.ids_in_states(conn, ids, (State.SENT,))
    log.info("send: %s", report.counts())
    return report


def _send_one(conn: psycopg.Connection, ledger_id: int, settings: Settings, iemk: client.IemkClient,
              report: SendReport) -> None:
    # The row lock is held across the HTTP call, so a concurrent run (backfill overlap) skips this row.
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
        )
        result = iemk.provide_and_register(submission, message_id=mid, reply_to=settings.callback_url or "")
        ledger.record_attempt(conn, ledger_id, mid)
        inbox.record_sent(conn, mid, ledger_id)     # its answers are ours, this round and after (callback rule)
        _record(conn, ledger_id, row.attempts + 1, result, settings, report)


def _record(conn: psycopg.Connection, ledger_id: int, attempts: int, result: client.CallResult,
            settings: Settings, report: SendReport) -> None:
    if result.verdict is client.Verdict.ACCEPTED:
        ledger.set_state(conn, ledger_id, State.SENT)
        report.accepted_now += 1
    elif result.verdict is client.Verdict.REJECTED:
        ledger.set_state(conn, ledger_id, State.REJECTED, error=result.error, error_code=result.code)
        report.rejected += 1
    elif result.verdict is client.Verdict.HELD:
        # Our settings, certificate or clock: the document waits, visibly, and goes by itself once fixed.
        ledger.set_state(conn, ledger_id, State.VALID, error=result.error, error_code=result.code)
        report.held += 1
    elif attempts >= settings.max_send_attempts:
        ledger.set_state(conn, ledger_id, State.FAILED, error_code=errors.TRANSPORT.code,
                         error=f"не удалось передать документ в ИЭМК за {attempts} попыток: {result.error}")
        report.failed += 1
    else:
        ledger.note_transient(conn, ledger_id, result.error, result.code or errors.TRANSPORT.code)
        report.transient += 1


def hold_for_signing_key(dsn: str, ids: list[int], problem: str) -> int:
    """The request-signing certificate cannot be used: say so on every document waiting to be sent."""
    text = f"сертификат ЭП для подписания запросов к ИЭМК не может быть использован: {problem}"
    with db.connect(dsn) as conn:
        waiting = ledger.ids_in_states(conn, ids, (State.VALID,))
        for ledger_id in waiting:
            with conn.transaction():
                ledger.set_state(conn, ledger_id, State.VALID, error=text, error_code=errors.SIGNING_KEY.code)
    log.error("МО documents held back (%d): %s", len(waiting), problem)
    return len(waiting)
