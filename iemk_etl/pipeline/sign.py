"""Sign: the script that signs a period's formed СЭМД in the МИС (author's and, where required, the МО's CAdES).

A document is signed once: a signed document is never re-signed with new bytes, so repeating a run changes
nothing. Signing sets signed_at, which fires procedure 1: the document enters the outbox.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass, field

import psycopg

from iemk_etl import errors, kinds, statuses
from iemk_etl.pipeline import guard
from iemk_etl.signing import cades, keys
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store.mis import documents

log = logging.getLogger(__name__)


@dataclass
class SignReport:
    signed: list[int] = field(default_factory=list)     # mis.semd_document ids signed now
    errors: dict[int, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"signed": len(self.signed), "errors": len(self.errors)}


def sign_period(conn: psycopg.Connection, store: KeyStore, mo_oid: str, start: dt.datetime, end: dt.datetime,
                kind_codes: list[int] | None = None) -> SignReport:
    """Sign every unsigned document of the МО created in [start, end) (optionally of some kinds)."""
    guard.require_autocommit(conn, "sign")
    report = SignReport()
    for document_id in documents.unsigned(conn, mo_oid, start, end, kind_codes):
        # Each signature is committed on its own; an exception on one document leaves it unsigned, saying why.
        with guard.each(conn, "sign", document_id, functools.partial(_sign_failed, conn, document_id, report)):
            _sign_one(conn, store, document_id, report)
    log.info("МО %s: signed %d, %d could not be signed", mo_oid, len(report.signed), len(report.errors))
    return report


def _sign_one(conn: psycopg.Connection, store: KeyStore, document_id: int, report: SignReport) -> None:
    with conn.transaction():
        doc = documents.lock_unsigned(conn, document_id)
        if doc is None:      # signed meanwhile, or another run holds it
            return
        try:
            author = store.staff_signer(doc.mo_code, doc.author_local_id)
            org = store.org_signer(doc.mo_code) if kinds.get(doc.kind_code).requires_org_signature else None
            signature, org_signature = cades.sign_document(doc.cda, doc.kind_code, author, org)
        except keys.KeyMaterialError as exc:
            documents.set_status(conn, document_id, statuses.error(f"не удалось подписать СЭМД: {exc}"))
            report.errors[document_id] = str(exc)
            return
        documents.mark_signed(conn, document_id, signature, org_signature, statuses.SIGNED)
        report.signed.append(document_id)


def _sign_failed(conn: psycopg.Connection, document_id: int, report: SignReport, kind: errors.ErrorKind,
                 text: str) -> None:
    documents.set_status(conn, document_id, statuses.error(f"не удалось подписать СЭМД: {text}"))
    report.errors[document_id] = kind.code
