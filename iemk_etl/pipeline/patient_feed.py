"""Patients before documents: the PIX feed of the МО's patients to ИЭМК (procedure 2 of the integration).

A patient is sent as an add the first time and as a revise when their demographics hash changes; a document goes
only once its patient's current data are accepted. A refused patient's documents end «Ошибка: <the ack's text>»
and are not sent. Every state of a patient's data is fed once (MessageID derived from it), so reruns send nothing new.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

import psycopg

from iemk_etl.protocol.hl7v3 import pix
from iemk_etl.protocol.hl7v3.common import IDENTITY_DOC_TYPE, POLICY_TYPE, SNILS_TYPE, OtherId, PatientRecord
from iemk_etl.settings import Settings
from iemk_etl.store import ledger
from iemk_etl.store.ledger import State
from iemk_etl.transport import client

log = logging.getLogger(__name__)

_NS = uuid.UUID("0b3c1f0e-6a52-4d4e-9a52-7f4f6e2b7c11")


@dataclass
class FeedReport:
    accepted: int = 0
    rejected: int = 0
    transient: int = 0
    documents_blocked: int = 0
    problems: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"accepted": self.accepted, "rejected": self.rejected, "transient": self.transient,
                "documents_blocked": self.documents_blocked}


_PENDING = """
WITH wanted AS (
    SELECT DISTINCT d.patient_id FROM iemk.ledger l JOIN mis.semd_document d ON d.id = l.document_id
    WHERE l.id = ANY(%(ids)s) AND l.state IN ('queued', 'valid')
    UNION
    SELECT o.patient_id FROM iemk.outbox o WHERE o.mo_oid = %(mo)s AND o.item_type = 'patient'
)
SELECT p.id, iemk.patient_demographics_hash(p), r.payload_hash IS NOT NULL,
       p.local_id, p.family, p.given, p.patronymic, p.sex, p.birth_date, p.snils, p.oms_policy,
       p.id_doc_series, p.id_doc_number, m.name
FROM wanted w JOIN mis.patient p ON p.id = w.patient_id JOIN mis.mo m ON m.oid = p.mo_oid
LEFT JOIN iemk.patient_registration r ON r.patient_id = p.id
WHERE p.mo_oid = %(mo)s AND r.payload_hash IS DISTINCT FROM iemk.patient_demographics_hash(p)
  AND NOT EXISTS (SELECT 1 FROM iemk.patient_feed f WHERE f.patient_id = p.id
                  AND f.payload_hash = iemk.patient_demographics_hash(p) AND f.state IN ('rejected', 'failed'))
ORDER BY p.id
"""


def _record(row: tuple, mo_oid: str) -> PatientRecord:
    (_, _, _, local_id, family, given, patronymic, sex, birth, snils, policy, series, number, _) = row
    others = []
    if snils:
        others.append(OtherId(SNILS_TYPE, snils))
    if policy:
        others.append(OtherId(POLICY_TYPE, policy))
    if number:
        others.append(OtherId(IDENTITY_DOC_TYPE, f"{series or ''}{number}"))
    return PatientRecord(mo_oid, local_id, family, given, patronymic, str(sex), birth.strftime("%Y%m%d"),
                               tuple(others))


def feed(conn: psycopg.Connection, mo_oid: str, ledger_ids: list[int], settings: Settings,
         iemk: client.IemkClient) -> FeedReport:
    """Send the МО's patients whose current data ИЭМК does not hold yet; block documents of refused ones."""
    if not settings.pix_url:
        raise ValueError("IEMK_URL (or IEMK_PIX_URL) is not set: nowhere to send patients")
    report = FeedReport()
    for row in conn.execute(_PENDING, {"ids": ledger_ids, "mo": mo_oid}).fetchall():
        _feed_one(conn, mo_oid, row, settings, iemk, report)
    report.documents_blocked = _block_refused(conn, ledger_ids)
    log.info("patients of МО %s: %s", mo_oid, report.counts())
    return report


def _feed_one(conn: psycopg.Connection, mo_oid: str, row: tuple, settings: Settings, iemk: client.IemkClient,
              report: FeedReport) -> None:
    patient_id, digest, known, *_, mo_name = row
    interaction = pix.REVISE if known else pix.ADD
    kind = "revise" if known else "add"
    message_id = f"urn:uuid:{uuid.uuid5(_NS, f'{mo_oid}|{patient_id}|{digest}|{kind}')}"
    body = pix.build_feed(interaction, _record(row, mo_oid), system_id=settings.require_client_entity_id(),
                          system_name="iemk-etl", mo_name=mo_name, processing_code=settings.processing_code,
                          receiver_device=settings.receiver_device_id)
    try:
        answer = iemk.call(settings.pix_url or "", pix.ACTION[interaction], body, message_id=message_id,
                           service="pix")
        ack = pix.read_ack(answer.body) if answer.body is not None else None
    except client.CallError as exc:
        state = "failed" if exc.result.verdict is client.Verdict.REJECTED else "queued"
        _save(conn, patient_id, digest, mo_oid, kind, state, message_id, exc.result.error)
        report.transient += state == "queued"
        report.rejected += state == "failed"
        report.problems.append(exc.result.error)
        return
    if ack is not None and ack.accepted:
        with conn.transaction():
            _save(conn, patient_id, digest, mo_oid, kind, "accepted", message_id, ack.detail)
            conn.execute("INSERT INTO iemk.patient_registration (patient_id, mo_oid, payload_hash) VALUES (%s, %s, %s)"
                         " ON CONFLICT (patient_id) DO UPDATE SET payload_hash = EXCLUDED.payload_hash,"
                         " registered_at = now()", (patient_id, mo_oid, digest))
        report.accepted += 1
    else:
        _save(conn, patient_id, digest, mo_oid, kind, "rejected", message_id,
              ack.detail if ack else "ИЭМК не вернула подтверждение")
        report.rejected += 1


def _save(conn: psycopg.Connection, patient_id: int, digest: str, mo_oid: str, kind: str, state: str,
          message_id: str, text: str | None) -> None:
    conn.execute(
        "INSERT INTO iemk.patient_feed (patient_id, payload_hash, mo_oid, interaction, state, message_id, attempts,"
        " ack_text) VALUES (%s, %s, %s, %s, %s, %s, 1, %s) ON CONFLICT (patient_id, payload_hash) DO UPDATE SET"
        " state = EXCLUDED.state, message_id = EXCLUDED.message_id, attempts = iemk.patient_feed.attempts + 1,"
        " ack_text = EXCLUDED.ack_text, updated_at = now()",
        (patient_id, digest, mo_oid, kind, state, message_id, text))


def _block_refused(conn: psycopg.Connection, ledger_ids: list[int]) -> int:
    """Documents whose patient's current data ИЭМК refused: «Ошибка: <the ack's text>», never sent."""
    rows = conn.execute(
        "SELECT l.id, f.ack_text FROM iemk.ledger l JOIN mis.semd_document d ON d.id = l.document_id"
        " JOIN mis.patient p ON p.id = d.patient_id"
        " JOIN iemk.patient_feed f ON f.patient_id = p.id AND f.payload_hash = iemk.patient_demographics_hash(p)"
        " WHERE l.id = ANY(%s) AND l.state IN ('queued', 'valid') AND f.state IN ('rejected', 'failed')",
        (ledger_ids,)).fetchall()
    for ledger_id, text in rows:
        with conn.transaction():
            ledger.set_state(conn, ledger_id, State.REJECTED, error=text, error_code="PATIENT_REJECTED")
    return len(rows)


def registered(conn: psycopg.Connection, ledger_id: int) -> bool:
    """Whether ИЭМК holds the current data of this document's patient."""
    row = conn.execute(
        "SELECT 1 FROM iemk.ledger l JOIN mis.semd_document d ON d.id = l.document_id"
        " JOIN mis.patient p ON p.id = d.patient_id JOIN iemk.patient_registration r ON r.patient_id = p.id"
        " WHERE l.id = %s AND r.payload_hash = iemk.patient_demographics_hash(p)", (ledger_id,)).fetchone()
    return row is not None
