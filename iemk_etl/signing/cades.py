"""CAdES of СЭМД: the seed's «подписание СЭМД простой ЭП», and the check of those signatures before sending.

Each signature is a detached CAdES-BES CMS over the document's exact bytes (``signing.cms``): the author's,
and the МО's for kinds that require it. The use case that signs a period's documents in the МИС is
``pipeline.sign``; the one that checks them before anything leaves is ``pipeline.validate``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from asn1crypto import core, x509

from iemk_etl import errors, kinds
from iemk_etl.errors import CodedError
from iemk_etl.signing import cms, keys
from iemk_etl.signing.gost import GostBackend

# Attributes of a qualified certificate's subject (приказ ФСБ № 795): СНИЛС of a person, ОГРН of an organisation.
SNILS_OID = "1.2.643.100.3"
OGRN_OID = "1.2.643.100.1"
_SURNAME, _GIVEN, _COMMON_NAME = "2.5.4.4", "2.5.4.42", "2.5.4.3"


def sign_bytes(data: bytes, signer: keys.AnySigner) -> bytes:
    if not isinstance(signer, keys.GostSigner):
        raise keys.KeyMaterialError("для подписи СЭМД нужен сертификат ГОСТ Р 34.10-2012")
    return cms.sign_detached_der(data, signer.key, signer.certificate_der, signer.backend)


def sign_document(data: bytes, kind_code: int, author: keys.AnySigner,
                  org: keys.AnySigner | None) -> tuple[bytes, bytes | None]:
    """(the author's signature, the МО's signature or None when the kind does not require one)."""
    org_signature = None
    if kinds.get(kind_code).requires_org_signature:
        if org is None:
            raise keys.KeyMaterialError("для этого вида СЭМД нужна подпись МО, а сертификат МО не настроен")
        org_signature = sign_bytes(data, org)
    return sign_bytes(data, author), org_signature


# --- the check before sending ------------------------------------------------------------------------------

class DocumentSignatureError(CodedError, ValueError):
    """A СЭМД's signature that must not leave: missing, broken, over other bytes, or by someone else.
    The message is the user's text after «Ошибка: Подпись СЭМД не прошла проверку: »."""

    default_kind = errors.SEMD_SIGNATURE


@dataclass(frozen=True)
class Author:
    """Who the МИС says wrote the document: the signer certificate must be theirs."""
    snils: str | None
    family: str
    given: str


def verify_document(data: bytes, kind_code: int, signature: bytes | None, org_signature: bytes | None,
                    author: Author, backend: GostBackend, *, mo_ogrn: str | None = None) -> None:
    """Every signature the kind needs verifies over exactly ``data``, by a certificate valid when it signed, the
    author's by the author; raise DocumentSignatureError naming which signature and why."""
    digest = backend.streebog256(data) if signature else b""    # once for both signatures: documents can be large
    cert = _verified("подпись автора", data, digest, signature, backend)
    if not _is_person(cert, author):
        raise DocumentSignatureError("FOREIGN_SIGNER", f"подпись автора: сертификат «{_subject(cert)}» выдан не "
                                                       "автору документа")
    if kinds.get(kind_code).requires_org_signature:
        org = _verified("подпись МО", data, digest, org_signature, backend)
        ogrn = _field(org, OGRN_OID)
        if mo_ogrn and ogrn and _digits(ogrn) != mo_ogrn:
            raise DocumentSignatureError("FOREIGN_SIGNER", f"подпись МО: сертификат «{_subject(org)}» выдан другой "
                                                           f"организации (ОГРН {_digits(ogrn)})")


def _verified(which: str, data: bytes, digest: bytes, signature: bytes | None,
              backend: GostBackend) -> x509.Certificate:
    if not signature:
        raise DocumentSignatureError("NO_SIGNATURE", f"{which} отсутствует")
    try:
        verified = cms.verify_detached(data, signature, backend, data_digest=digest or None)
    except cms.CmsError as exc:
        raise DocumentSignatureError(exc.code, f"{which}: {exc.message}") from None
    try:
        keys.check_certificate(verified.certificate.dump(), at=_aware(verified.signing_time))
    except keys.KeyMaterialError as exc:
        raise DocumentSignatureError("CERTIFICATE_NOT_VALID",
                                     f"{which}: на момент подписания {exc.message}") from None
    return verified.certificate


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _is_person(cert: x509.Certificate, author: Author) -> bool:
    """A qualified certificate names its holder by СНИЛС, else by surname and given names; a certificate with
    neither (a test one) at least by a common name holding the author's name."""
    snils = _field(cert, SNILS_OID)
    if snils and author.snils:
        return _digits(snils) == _digits(author.snils)
    surname = _field(cert, _SURNAME)
    if surname:
        given = _field(cert, _GIVEN) or ""
        return _same(surname, author.family) and _same(given.split(" ")[0] if given else author.given, author.given)
    words = {_fold(w) for w in (_field(cert, _COMMON_NAME) or "").split()}
    return _fold(author.family) in words and _fold(author.given) in words


def _field(cert: x509.Certificate, oid: str) -> str | None:
    for rdn in cert.subject.chosen:
        for pair in rdn:
            if pair["type"].dotted == oid:
                value = pair["value"]
                native = value.parsed.native if isinstance(value, core.Any) else value.native
                return str(native).strip()
    return None


def _subject(cert: x509.Certificate) -> str:
    return _field(cert, _COMMON_NAME) or cert.subject.human_friendly


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _fold(text: str) -> str:
    return text.strip().casefold().replace("ё", "е")


def _same(a: str, b: str) -> bool:
    return _fold(a) == _fold(b)
