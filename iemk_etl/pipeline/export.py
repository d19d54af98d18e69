"""The export of one МО's documents for one period, as steps the DAG runs in order.

extract → validate → send → (wait for replies) → apply replies and write statuses back.
Each step takes and returns ledger ids, reads everything else from the database, and can be repeated:
a step re-run on the same ids does nothing that was already done, and nothing is ever sent twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass, field

import psycopg

from iemk_etl.flk import validation
from iemk_etl.pipeline import patient_feed
from iemk_etl.protocol import soap
from iemk_etl.protocol.xds import submit
from iemk_etl.protocol.xds.common import RegistryResponse, read_registry_response
from iemk_etl.semd.header import unique_id, version_uid
from iemk_etl.settings import Settings
from iemk_etl.store import db, integration, ledger
from iemk_etl.store.ledger import State
from iemk_etl.transport import client

log = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CHUNK = 200


@dataclass
class SendReport:
    sent: list[int] = field(default_factory=list)          # ledger ids now awaiting an answer
    accepted_now: int = 0
    rejected: int = 0
    transient: int = 0
    failed: int = 0
    waiting_for_patient: int = 0

    def counts(self) -> dict[str, int]:
        return {"awaiting": len(self.sent), "accepted_now": self.accepted_now, "rejected": self.rejected,
                "transient": self.transient, "failed": self.failed, "waiting_for_patient": self.waiting_for_patient}


def integration_on(conn: psycopg.Connection, mo_oid: str) -> bool:
    enabled, total = integration.procedures_enabled(conn, mo_oid)
    log.info("integration %s for МО %s: %d/%d procedures enabled", integration.EXTERNAL_SYSTEM, mo_oid,
             enabled, total)
    return total > 0 and enabled == total


_ITEMS = (
    "SELECT o.document_id, d.local_uid, d.version, d.kind_code, d.signed_at, encode(sha256(d.cda), 'hex')"
    " FROM iemk.outbox o JOIN mis.semd_document d ON d.id = o.document_id AND d.version = o.doc_version"
    " WHERE o.mo_oid = %s AND o.item_type = 'document'"
)
_SWEEP = (
    "INSERT INTO iemk.outbox (mo_oid, item_type, document_id, doc_version, patient_id, event_at)"
    " SELECT mo_oid, 'document', id, version, patient_id, signed_at FROM mis.semd_document"
    " WHERE mo_oid = %s AND signed_at IS NOT NULL"
)


def _record_in_ledger(conn: psycopg.Connection, mo_oid: str, items: list[tuple]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO iemk.ledger (mo_oid, unique_id, version, document_id, kind_code, signed_at, content_hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(mo_oid, unique_id(mo_oid, version_uid(uid, version)), version, doc_id, kind, signed_at, digest)
             for doc_id, uid, version, kind, signed_at, digest in items],
        )


def extract(conn: psycopg.Connection, mo_oid: str, start: dt.datetime | None, end: dt.datetime | None) -> list[int]:
    """Ledger ids of the documents this run is responsible for.

    Those signed in [start, end), plus older ones that are not final yet (a transient failure or an
    answer still awaited). Documents signed in the period while the queue was not fed (integration
    switched on later, a historical backfill) are put into the outbox first, as procedure 1 would have.
    """
    start, end = start or _EPOCH, end or dt.datetime.now(dt.UTC)
    with conn.transaction():
        swept = conn.execute(_SWEEP + " AND signed_at >= %s AND signed_at < %s ON CONFLICT DO NOTHING",
                             (mo_oid, start, end)).rowcount
        items = conn.execute(_ITEMS + " AND o.event_at >= %s AND o.event_at < %s", (mo_oid, start, end)).fetchall()
        _record_in_ledger(conn, mo_oid, items)
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM iemk.ledger WHERE mo_oid = %s AND signed_at < %s"
            " AND (signed_at >= %s OR state = ANY(%s)) ORDER BY signed_at, id",
            (mo_oid, end, start, sorted(ledger.OPEN)),
        )]
    log.info("МО %s [%s, %s): %d documents in scope (%d swept into the outbox)", mo_oid, start, end, len(ids),
             swept)
    return ids


def extract_documents(conn: psycopg.Connection, mo_oid: str, document_ids: list[int]) -> list[int]:
    """Ledger ids for these МИС documents (the signed ones; others are not for export yet)."""
    with conn.transaction():
        conn.execute(_SWEEP + " AND id = ANY(%s) ON CONFLICT DO NOTHING", (mo_oid, document_ids))
        items = conn.execute(_ITEMS + " AND o.document_id = ANY(%s)", (mo_oid, document_ids)).fetchall()
        _record_in_ledger(conn, mo_oid, items)
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM iemk.ledger WHERE mo_oid = %s AND document_id = ANY(%s) ORDER BY id",
            (mo_oid, document_ids))]
    log.info("МО %s: %d of %d documents in scope", mo_oid, len(ids), len(document_ids))
    return ids


def validate(conn: psycopg.Connection, ids: list[int], settings: Settings) -> list[int]:
    """Format control of the not-yet-checked documents; returns the ids that may go on."""
    checked = 0
    # In chunks, so a large backlog never holds every document's bytes in memory at once.
    for chunk in (ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)):
        rows = conn.execute(
            "SELECT l.id, l.kind_code, l.content_hash, d.cda FROM iemk.ledger l"
            " JOIN mis.semd_document d ON d.id = l.document_id WHERE l.id = ANY(%s) AND l.state = 'queued'",
            (chunk,),
        ).fetchall()
        for ledger_id, kind_code, content_hash, data in rows:
            _check_one(conn, ledger_id, _findings(kind_code, bytes(data), content_hash, settings))
        checked += len(rows)
    passed = [r[0] for r in conn.execute(
        "SELECT id FROM iemk.ledger WHERE id = ANY(%s) AND state IN ('valid', 'sent') ORDER BY id", (ids,))]
    log.info("format control: %d checked now, %d of %d may go on", checked, len(passed), len(ids))
    return passed


def _check_one(conn: psycopg.Connection, ledger_id: int, findings: list[validation.Finding]) -> None:
    with conn.transaction():
        if findings:
            text = "; ".join(f.text() for f in findings[:3])
            ledger.set_state(conn, ledger_id, State.INVALID, error=text, error_code=findings[0].rule)
            log.info("ledger %s failed format control: %s", ledger_id, findings[0].rule)
        else:
            ledger.set_state(conn, ledger_id, State.VALID)


def _findings(kind_code: int, data: bytes, content_hash: str, settings: Settings) -> list[validation.Finding]:
    if hashlib.sha256(data).hexdigest() != content_hash:
        # The МИС changed the bytes after they were queued under this version: a new version is needed.
        return [validation.Finding("policy", "CONTENT_CHANGED",
                                   "содержимое документа изменилось после постановки в очередь без новой версии")]
    return validation.validate(kind_code, data, packs_dir=settings.packs_dir, require_packs=settings.require_packs,
                               logical=settings.logical_control)


def send(dsn: str, ids: list[int], settings: Settings, iemk: client.IemkClient, *,
         patients_first: bool = True) -> SendReport:
    """Send every valid document among ``ids`` once; the ones already sent are only reported.

    With ``patients_first`` a document waits until ИЭМК holds its patient's current data (patient_feed)."""
    if not settings.callback_url:
        raise ValueError("IEMK_CALLBACK_URL is not set: ИЭМК would have nowhere to send its answers")
    report = SendReport()
    with db.connect(dsn) as conn:
        for ledger_id in ids:
            if patients_first and not patient_feed.registered(conn, ledger_id):
                conn.execute("UPDATE iemk.ledger SET last_error = %s, updated_at = now() WHERE id = %s"
                             " AND state = 'valid'", ("пациент ещё не зарегистрирован в ИЭМК", ledger_id))
                report.waiting_for_patient += 1
                continue
            _send_one(conn, ledger_id, settings, iemk, report)
        report.sent = [r[0] for r in conn.execute(
            "SELECT id FROM iemk.ledger WHERE id = ANY(%s) AND state = 'sent' ORDER BY id", (ids,))]
    log.info("send: %s", report.counts())
    return report


_SUBMISSION_SQL = """
SELECT l.mo_oid, l.unique_id, l.version, l.content_hash, l.resend_round, l.attempts, l.kind_code, d.created_at, d.cda,
       m.name, p.local_id, s.snils, s.family, s.given, s.patronymic,
       -- a later version replaces (XDS RPLC) the newest earlier one ИЭМК stored
       (SELECT e.unique_id FROM iemk.ledger e JOIN mis.semd_document ed ON ed.id = e.document_id
         WHERE ed.mo_oid = d.mo_oid AND ed.local_uid = d.local_uid AND ed.version < d.version AND e.state = 'stored'
         ORDER BY ed.version DESC LIMIT 1) AS replaces
FROM iemk.ledger l
JOIN mis.semd_document d ON d.id = l.document_id
JOIN mis.mo m ON m.oid = l.mo_oid
JOIN mis.patient p ON p.id = d.patient_id
JOIN mis.staff s ON s.id = d.author_id
WHERE l.id = %s AND l.state = 'valid'
FOR UPDATE OF l SKIP LOCKED
"""


def _send_one(conn: psycopg.Connection, ledger_id: int, settings: Settings, iemk: client.IemkClient,
              report: SendReport) -> None:
    # The row lock is held across the HTTP call, so a concurrent run (backfill overlap) skips this row.
    with conn.transaction():
        row = conn.execute(_SUBMISSION_SQL, (ledger_id,)).fetchone()
        if row is None:
            return
        (mo_oid, unique_id, version, content_hash, resend_round, attempts, kind_code, created_at, data, mo_name,
         patient_local_id, a_snils, a_family, a_given, a_patronymic, replaces) = row
        mid = ledger.message_id(mo_oid, unique_id, version, content_hash, resend_round)
        submission = submit.Submission(
            unique_id=unique_id, mo_oid=mo_oid, mo_name=mo_name, patient_local_id=patient_local_id,
            kind_code=kind_code, created_at=created_at,
            author=submit.AuthorRef(a_snils, a_family, a_given, a_patronymic), document=bytes(data),
            submission_set_id=f"{mo_oid}.100.1.1.50.{ledger_id}.{version}", replaces=replaces,
        )
        result = iemk.provide_and_register(submission, message_id=mid, reply_to=settings.callback_url or "")
        conn.execute(
            "UPDATE iemk.ledger SET attempts = attempts + 1, message_id = %s, last_sent_at = now(),"
            " first_sent_at = coalesce(first_sent_at, now()) WHERE id = %s",
            (mid, ledger_id),
        )
        _record(conn, ledger_id, attempts + 1, result, settings, report)


def _record(conn: psycopg.Connection, ledger_id: int, attempts: int, result: client.CallResult,
            settings: Settings, report: SendReport) -> None:
    if result.verdict is client.Verdict.ACCEPTED:
        ledger.set_state(conn, ledger_id, State.SENT)
        report.accepted_now += 1
    elif result.verdict is client.Verdict.REJECTED:
        ledger.set_state(conn, ledger_id, State.REJECTED, error=result.error, error_code="SYNC_REJECTED")
        report.rejected += 1
    elif attempts >= settings.max_send_attempts:
        ledger.set_state(conn, ledger_id, State.FAILED, error_code="TRANSPORT",
                         error=f"не удалось передать документ в ИЭМК за {attempts} попыток: {result.error}")
        report.failed += 1
    else:
        conn.execute("UPDATE iemk.ledger SET last_error = %s, error_code = 'TRANSPORT', updated_at = now()"
                     " WHERE id = %s", (result.error, ledger_id))
        report.transient += 1


def hold_for_signing_key(dsn: str, ids: list[int], problem: str) -> int:
    """The request-signing certificate cannot be used: say so on every document waiting to be sent."""
    text = f"сертификат ЭП для подписания запросов к ИЭМК не может быть использован: {problem}"
    with db.connect(dsn) as conn:
        waiting = [r[0] for r in conn.execute(
            "SELECT id FROM iemk.ledger WHERE id = ANY(%s) AND state = 'valid'", (ids,))]
        for ledger_id in waiting:
            with conn.transaction():
                ledger.set_state(conn, ledger_id, State.VALID, error=text, error_code="SIGNING_KEY")
    log.error("МО documents held back (%d): %s", len(waiting), problem)
    return len(waiting)


def replies_pending(conn: psycopg.Connection, ids: list[int]) -> tuple[int, int]:
    """(answered, awaited) among the documents of ``ids`` that wait for ИЭМК's asynchronous answer."""
    awaited, answered = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE EXISTS ("
        "   SELECT 1 FROM iemk.inbox i WHERE i.relates_to = l.message_id))"
        " FROM iemk.ledger l WHERE l.id = ANY(%s) AND l.state = 'sent'",
        (ids,),
    ).fetchone() or (0, 0)
    return answered, awaited


def apply_replies(conn: psycopg.Connection, mo_oid: str) -> dict[str, int]:
    """Turn the stored asynchronous answers into document states, for every sent document of the МО."""
    rows = conn.execute(
        "SELECT l.id, array_agg(i.body ORDER BY i.received_at), array_agg(i.message_id)"
        " FROM iemk.ledger l JOIN iemk.inbox i ON i.relates_to = l.message_id"
        " WHERE l.mo_oid = %s AND l.state = 'sent' GROUP BY l.id",
        (mo_oid,),
    ).fetchall()
    counts = {"stored": 0, "rejected": 0, "unreadable": 0}
    for ledger_id, bodies, reply_ids in rows:
        outcome = _outcome([bytes(b) for b in bodies])
        with conn.transaction():
            if outcome is None:
                counts["unreadable"] += 1
                conn.execute("UPDATE iemk.ledger SET last_error = %s WHERE id = %s",
                             ("асинхронный ответ ИЭМК не удалось разобрать", ledger_id))
            elif outcome.success or _already_registered(outcome):
                ledger.set_state(conn, ledger_id, State.STORED)
                counts["stored"] += 1
            elif _busy(outcome) and _rounds(conn, ledger_id) < BUSY_ROUNDS:
                # ИЭМК was busy, not refusing: send again next run.
                ledger.send_again(conn, ledger_id, reason=outcome.error_text(), code="REGISTRY_BUSY")
                counts["busy_requeued"] = counts.get("busy_requeued", 0) + 1
            else:
                ledger.set_state(conn, ledger_id, State.REJECTED, error=outcome.error_text(),
                                 error_code=outcome.errors[0].error_code if outcome.errors else None)
                counts["rejected"] += 1
            conn.execute("UPDATE iemk.inbox SET processed_at = now() WHERE message_id = ANY(%s)", (reply_ids,))
    log.info("replies applied for МО %s: %s", mo_oid, counts)
    return counts


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


BUSY_ROUNDS = 5


def _busy(response: RegistryResponse) -> bool:
    return bool(response.errors) and all(e.error_code == "XDSRegistryBusy" for e in response.errors)


def _rounds(conn: psycopg.Connection, ledger_id: int) -> int:
    row = conn.execute("SELECT resend_round FROM iemk.ledger WHERE id = %s", (ledger_id,)).fetchone()
    return row[0] if row else 0


def _already_registered(response: RegistryResponse) -> bool:
    # The same MessageID carries the same bytes (see ledger.message_id): "duplicate" then means that
    # this very document is in ИЭМК already, delivered by an earlier attempt.
    return bool(response.errors) and all(e.error_code == "XDSDuplicateUniqueIdInRegistry" for e in response.errors)


def write_back(conn: psycopg.Connection, mo_oid: str, ids: list[int]) -> dict[str, int]:
    """Apply the answers, repair drifted МИС statuses; counts of what was done and where ``ids`` stand now."""
    counts = {f"replies_{k}": v for k, v in apply_replies(conn, mo_oid).items()}
    with conn.transaction():
        counts["statuses_repaired"] = ledger.sync_statuses(conn, ids)
    counts.update({f"now_{k}": v for k, v in state_counts(conn, ids).items()})
    return counts


def state_counts(conn: psycopg.Connection, ids: list[int]) -> dict[str, int]:
    return {state: n for state, n in conn.execute(
        "SELECT state, count(*) FROM iemk.ledger WHERE id = ANY(%s) GROUP BY state ORDER BY state", (ids,))}


def deliver_now(dsn: str, mo_oid: str, document_ids: list[int], settings: Settings, iemk: client.IemkClient, *,
                wait_seconds: float = 30.0) -> dict[str, int]:
    """«Передать документ в ИЭМК»: these documents now, through the same ledger and rules as the nightly run."""
    with db.connect(dsn, autocommit=True) as conn:
        ids = validate(conn, extract_documents(conn, mo_oid, document_ids), settings)
        patient_feed.feed(conn, mo_oid, ids, settings, iemk)
    report = send(dsn, ids, settings, iemk)
    deadline = time.monotonic() + wait_seconds
    with db.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            answered, awaited = replies_pending(conn, report.sent)
            if answered >= awaited:
                break
            time.sleep(0.2)
        return {**report.counts(), **write_back(conn, mo_oid, ids)}
