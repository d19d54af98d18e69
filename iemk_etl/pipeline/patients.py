"""Patients before documents: the PIX feed of the МО's patients to ИЭМК (procedure 2 of the integration).

A patient is sent as an add the first time and as a revise when their demographics hash changes; a document goes
only once its patient's current data are accepted. A refused patient's documents end «Ошибка: <the ack's text>»
and are not sent. Every state of a patient's data is fed once (MessageID derived from it), so reruns send nothing new.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass, field

import psycopg
from lxml import etree

from iemk_etl import errors
from iemk_etl.pipeline import guard, outcomes
from iemk_etl.protocol.hl7v3 import pix
from iemk_etl.protocol.hl7v3.common import (
    IDENTITY_DOC_TYPE,
    POLICY_TYPE,
    SMO_REGISTRY,
    SNILS_TYPE,
    OtherId,
    PatientRecord,
)
from iemk_etl.settings import Settings
from iemk_etl.store import ledger
from iemk_etl.store import patient_feed as feed_rows
from iemk_etl.store.ledger import State
from iemk_etl.store.mis import exchange
from iemk_etl.store.mis.exchange import PatientToFeed
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


def record(p: PatientToFeed, mo_oid: str) -> PatientRecord:
    """The patient as the feed states them: identifiers in the sample's order (ДУЛ, СНИЛС), then the ОМС policy,
    which the sample lacks; the phone as a URL."""
    others = [o for o in (_identity_document(p), _snils(p), _policy(p)) if o is not None]
    return PatientRecord(mo_oid, p.local_id, p.family, p.given, p.patronymic, str(p.sex),
                         p.birth_date.strftime("%Y%m%d"), tuple(others), telecom=telecom(p.phone))


def _identity_document(p: PatientToFeed) -> OtherId | None:
    if not p.id_doc_number:
        return None
    # Series and number run together, as in the sample (documentNumber number="9206662113").
    return OtherId(IDENTITY_DOC_TYPE, f"{p.id_doc_series or ''}{p.id_doc_number}",
                   doc_kind=str(p.id_doc_kind) if p.id_doc_kind is not None else None,
                   issuer_name=p.id_doc_issued_by or None)


def _snils(p: PatientToFeed) -> OtherId | None:
    return OtherId(SNILS_TYPE, p.snils) if p.snils else None


def _policy(p: PatientToFeed) -> OtherId | None:
    if not p.oms_policy:
        return None
    if not p.oms_insurer_code:
        # Without the СМО's code the issuer is unknown to ИЭМК: said so (nullFlavor NI), never invented.
        return OtherId(POLICY_TYPE, p.oms_policy, issuer_name=p.oms_insurer or None)
    return OtherId(POLICY_TYPE, p.oms_policy, issuer_root=SMO_REGISTRY, issuer_code=p.oms_insurer_code,
                   issuer_name=p.oms_insurer or None)


def telecom(phone: str | None) -> str | None:
    """A phone as an HL7 TEL URL (tel:+7-…), as the sample writes it; a value with its scheme stays as it is."""
    if not phone or not phone.strip():
        return None
    phone = phone.strip()
    return phone if phone.startswith(("tel:", "mailto:")) else f"tel:{phone}"


def feed_message(patient: PatientToFeed, mo_oid: str, settings: Settings) -> etree._Element:
    """The PIX add (a patient ИЭМК does not hold yet) or revise of this patient's current data."""
    return pix.build_feed(pix.REVISE if patient.known else pix.ADD, record(patient, mo_oid),
                          system_id=settings.require_client_entity_id(), system_name=settings.system_name,
                          mo_name=patient.mo_name, mo_phone=telecom(patient.mo_phone),
                          processing_code=settings.processing_code, receiver_device=settings.receiver_device_id)


def feed(conn: psycopg.Connection, mo_oid: str, ledger_ids: list[int], settings: Settings,
         iemk: client.IemkClient) -> FeedReport:
    """Send the МО's patients whose current data ИЭМК does not hold yet; block documents of refused ones."""
    if not settings.pix_url:
        raise ValueError("IEMK_URL (or IEMK_PIX_URL) is not set: nowhere to send patients")
    guard.require_autocommit(conn, "patients.feed")
    report = FeedReport()
    for patient in exchange.patients_to_feed(conn, mo_oid, ledger_ids):
        # Each patient's outcome is committed on its own; an exception on one (its data, a bug) leaves that patient
        # unregistered, with the reason on its feed row, and the others go on.
        with guard.each(conn, "patients.feed", patient.patient_id,
                        functools.partial(_feed_failed, conn, mo_oid, patient, report)):
            _feed_one(conn, mo_oid, patient, settings, iemk, report)
    report.documents_blocked = _block_refused(conn, ledger_ids)
    log.info("patients of МО %s: %s", mo_oid, report.counts())
    return report


def _feed_one(conn: psycopg.Connection, mo_oid: str, patient: PatientToFeed, settings: Settings,
              iemk: client.IemkClient, report: FeedReport) -> None:
    """Send this patient's current data and record ИЭМК's verdict."""
    kind, message_id = _feed_identity(mo_oid, patient)
    body = feed_message(patient, mo_oid, settings)
    try:
        answer = iemk.call(settings.pix_url or "", pix.ACTION[etree.QName(body).localname], body,
                           message_id=message_id, service="pix")
    except client.CallError as exc:
        _call_failed(conn, mo_oid, patient, kind, message_id, exc.result, report)
        return
    ack = pix.read_ack(answer.body) if answer.body is not None else None
    _settle(conn, mo_oid, patient, kind, message_id, ack, report)


def _call_failed(conn: psycopg.Connection, mo_oid: str, patient: PatientToFeed, kind: str, message_id: str,
                 result: client.CallResult, report: FeedReport) -> None:
    """No acknowledgement: a refused request fails this state of the data; anything else waits for a rerun."""
    state = "failed" if result.verdict is client.Verdict.REJECTED else "queued"
    _save(conn, patient.patient_id, patient.demographics_hash, mo_oid, kind, state, message_id, result.error)
    report.transient += state == "queued"
    report.rejected += state == "failed"
    report.problems.append(result.error)


def _settle(conn: psycopg.Connection, mo_oid: str, patient: PatientToFeed, kind: str, message_id: str,
            ack: pix.Acknowledgement | None, report: FeedReport) -> None:
    """ИЭМК's acknowledgement: accepted data become the registered state of the patient; refused ones block."""
    patient_id, digest = patient.patient_id, patient.demographics_hash
    if ack is not None and ack.accepted:
        with conn.transaction():
            _save(conn, patient_id, digest, mo_oid, kind, "accepted", message_id, ack.detail)
            feed_rows.register(conn, patient_id, mo_oid, digest)
        report.accepted += 1
        return
    _save(conn, patient_id, digest, mo_oid, kind, "rejected", message_id,
          ack.detail if ack else "ИЭМК не вернула подтверждение")
    report.rejected += 1


def _feed_identity(mo_oid: str, patient: PatientToFeed) -> tuple[str, str]:
    """("add" | "revise", the MessageID of feeding this state of the patient's data)."""
    kind = "revise" if patient.known else "add"
    key = f"{mo_oid}|{patient.patient_id}|{patient.demographics_hash}|{kind}"
    return kind, f"urn:uuid:{uuid.uuid5(_NS, key)}"


def _feed_failed(conn: psycopg.Connection, mo_oid: str, patient: PatientToFeed, report: FeedReport,
                 kind: errors.ErrorKind, text: str) -> None:
    """An exception on this patient: not fed; its documents wait, and the feed row says why."""
    interaction, message_id = _feed_identity(mo_oid, patient)
    _save(conn, patient.patient_id, patient.demographics_hash, mo_oid, interaction, "queued", message_id, text)
    report.problems.append(f"{kind.code}: пациент {patient.patient_id}")
    report.transient += 1


def _save(conn: psycopg.Connection, patient_id: int, digest: str, mo_oid: str, kind: str, state: str,
          message_id: str, text: str | None) -> None:
    feed_rows.save(conn, patient_id=patient_id, payload_hash=digest, mo_oid=mo_oid, interaction=kind, state=state,
                   message_id=message_id, ack_text=text)


def _block_refused(conn: psycopg.Connection, ledger_ids: list[int]) -> int:
    """Documents whose patient's current data ИЭМК refused: «Ошибка: <the ack's text>», never sent."""
    rows = exchange.ledger_documents_of_refused_patients(conn, ledger_ids)
    for ledger_id, text in rows:
        with conn.transaction():
            ledger.set_state(conn, ledger_id, State.REJECTED, error=text, error_code=errors.PATIENT_REJECTED.code)
            outcomes.log_refusal(conn, ledger_id, errors.PATIENT_REJECTED.code, "patients")
    return len(rows)


def registered(conn: psycopg.Connection, ledger_id: int) -> bool:
    """Whether ИЭМК holds the current data of this document's patient."""
    return exchange.ledger_patient_registered(conn, ledger_id)
