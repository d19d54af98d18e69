"""Signing СЭМД: the seed's «подписание СЭМД простой ЭП» and the script that signs a period's documents.

Each signature is a detached CAdES-BES CMS over the document's exact bytes (``crypto.cms``): the author's,
and the МО's for kinds that require it. A document is signed once: a signed document is never re-signed
with new bytes, so repeating a run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import psycopg

from iemk_etl import kinds, statuses
from iemk_etl.signing import cms, keys
from iemk_etl.signing.keystore import KeyStore

log = logging.getLogger(__name__)


@dataclass
class SignReport:
    signed: list[int] = field(default_factory=list)     # mis.semd_document ids signed now
    errors: dict[int, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"signed": len(self.signed), "errors": len(self.errors)}


def sign_bytes(data: bytes, signer: keys.AnySigner) -> bytes:
    if not isinstance(signer, keys.GostSigner):
        raise keys.KeyMaterialError("для подписи СЭМД нужен сертификат ГОСТ Р 34.10-2012")
    return cms.sign_detached(data, signer.key, signer.certificate, signer.backend)


def sign_document(data: bytes, kind_code: int, author: keys.AnySigner,
                  org: keys.AnySigner | None) -> tuple[bytes, bytes | None]:
    org_signature = None
    if kinds.get(kind_code).requires_org_signature:
        if org is None:
            raise keys.KeyMaterialError("для этого вида СЭМД нужна подпись МО, а сертификат МО не настроен")
        org_signature = sign_bytes(data, org)
    return sign_bytes(data, author), org_signature


_UNSIGNED = """
SELECT d.id FROM mis.semd_document d
WHERE d.mo_oid = %s AND d.signed_at IS NULL AND d.created_at >= %s AND d.created_at < %s
  AND length(d.cda) > 0  -- a record that could not be formed keeps its «Ошибка: …»
  AND (%s::int[] IS NULL OR d.kind_code = ANY(%s::int[]))
ORDER BY d.created_at, d.id
"""


def sign_period(conn: psycopg.Connection, store: KeyStore, mo_oid: str, start: dt.datetime, end: dt.datetime,
                kind_codes: list[int] | None = None) -> SignReport:
    """Sign every unsigned document of the МО created in [start, end) (optionally of some kinds)."""
    report = SignReport()
    candidates = [r[0] for r in conn.execute(_UNSIGNED, (mo_oid, start, end, kind_codes, kind_codes))]
    for document_id in candidates:
        _sign_one(conn, store, document_id, report)
    log.info("МО %s: signed %d, %d could not be signed", mo_oid, len(report.signed), len(report.errors))
    return report


def _sign_one(conn: psycopg.Connection, store: KeyStore, document_id: int, report: SignReport) -> None:
    with conn.transaction():
        row = conn.execute(
            "SELECT d.kind_code, d.cda, s.local_id, m.code FROM mis.semd_document d"
            " JOIN mis.staff s ON s.id = d.author_id JOIN mis.mo m ON m.oid = d.mo_oid"
            " WHERE d.id = %s AND d.signed_at IS NULL FOR UPDATE OF d SKIP LOCKED", (document_id,)).fetchone()
        if row is None:      # signed meanwhile, or another run holds it
            return
        kind_code, data, staff_local_id, mo_code = row
        try:
            author = store.staff_signer(mo_code, staff_local_id)
            org = store.org_signer(mo_code) if kinds.get(kind_code).requires_org_signature else None
            signature, org_signature = sign_document(bytes(data), kind_code, author, org)
        except keys.KeyMaterialError as exc:
            text = statuses.error(f"не удалось подписать СЭМД: {exc}")
            conn.execute("UPDATE mis.semd_document SET status = %s, status_at = now() WHERE id = %s",
                         (text, document_id))
            report.errors[document_id] = str(exc)
            return
        # Setting signed_at fires procedure 1, which puts the document into the outbox.
        conn.execute(
            "UPDATE mis.semd_document SET signature = %s, org_signature = %s, signed_at = now(),"
            " status = %s, status_at = now() WHERE id = %s",
            (signature, org_signature, statuses.SIGNED, document_id))
        report.signed.append(document_id)
