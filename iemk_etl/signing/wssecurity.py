"""WS-Security message signature of SOAP requests, the ИПС profile.

One place signs every request and one place verifies (used by the emulator): a BinarySecurityToken
with the signer certificate, a Timestamp, and an XMLDSig Signature with one exclusive-c14n Reference
to each of Body, Timestamp and the WS-Addressing headers MessageID, ReplyTo, To, Action.
The algorithm comes from the signer, so GOST R 34.10-2012 plugs in without touching this module.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from iemk_etl import errors
from iemk_etl.errors import CodedError
from iemk_etl.protocol.soap import SOAP, WSA
from iemk_etl.protocol.xml import qname, sub
from iemk_etl.signing import asn1, keys
from iemk_etl.signing.backend import get_backend
from iemk_etl.signing.keys import Signer

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

_NS = {"s": SOAP, "wsa": WSA, "wsse": WSSE, "wsu": WSU, "ds": DS}
_WSU_ID = f"{{{WSU}}}Id"

# What the profile requires to be signed, by the element that must carry a referenced wsu:Id.
REQUIRED_PARTS = {
    "Body": "/s:Envelope/s:Body",
    "Timestamp": "/s:Envelope/s:Header/wsse:Security/wsu:Timestamp",
    "MessageID": "/s:Envelope/s:Header/wsa:MessageID",
    "ReplyTo": "/s:Envelope/s:Header/wsa:ReplyTo",
    "To": "/s:Envelope/s:Header/wsa:To",
    "Action": "/s:Envelope/s:Header/wsa:Action",
}
# ИЭМК's asynchronous replies (RegistryResponse to our ReplyTo): only the Body must be signed. A reply has no ReplyTo,
# and ИЭМК's reply profile is not published, so we ask no more than the answer itself (IEMK_REPLY_SIGNATURE).
RESPONSE_PARTS = ("Body",)


class SignatureError(CodedError, ValueError):
    """A request whose signature cannot be accepted; ``code`` says why (НСИ 305 / WS-Security mnemonics), ``message``
    says it in Russian."""

    default_kind = errors.BAD_SIGNATURE


def _rsa_verify(cert_der: bytes, data: bytes, signature: bytes) -> None:
    key = x509.load_der_x509_certificate(cert_der).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("UNKNOWN_ALGORITHM", "ключ сертификата не соответствует алгоритму RSA-SHA256")
    key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def _gost_verify(cert_der: bytes, data: bytes, signature: bytes) -> None:
    cert = asn1_x509.Certificate.load(cert_der)
    if not asn1.is_gost_certificate(cert):
        raise SignatureError("UNKNOWN_ALGORITHM", "ключ сертификата не ГОСТ Р 34.10-2012, а алгоритм подписи — ГОСТ")
    backend = get_backend()
    if not backend.verify_digest(asn1.certificate_public_key(cert), backend.streebog256(data), signature):
        raise InvalidSignature()


def _streebog(data: bytes) -> bytes:
    return get_backend().streebog256(data)


# Allow-lists: an algorithm not listed here is refused, never guessed. Both spellings of the GOST URIs.
SIGNATURE_VERIFIERS: dict[str, Callable[[bytes, bytes, bytes], None]] = {
    keys.RSA_SHA256: _rsa_verify, keys.GOST_2012_256: _gost_verify, keys.GOST_2012_256_CP: _gost_verify,
}
DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    keys.SHA256: lambda data: hashlib.sha256(data).digest(),
    keys.STREEBOG_256: _streebog, keys.STREEBOG_256_CP: _streebog,
}


def c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def _ensure_id(element: etree._Element, prefix: str) -> str:
    existing = element.get(_WSU_ID)
    if existing:
        return existing
    value = f"{prefix}-{uuid.uuid4()}"
    element.set(_WSU_ID, value)
    return value


def _one(envelope: etree._Element, xpath: str) -> etree._Element | None:
    found = envelope.xpath(xpath, namespaces=_NS)
    return found[0] if len(found) == 1 else None


def sign_envelope(envelope: etree._Element, signer: Signer, *, ttl_seconds: int = 300,
                  now: dt.datetime | None = None, parts: Iterable[str] | None = None) -> None:
    """Add wsse:Security with the signature to a SOAP 1.2 envelope, in place; ``parts`` (names of REQUIRED_PARTS,
    default all of them: the request profile) are the elements referenced, RESPONSE_PARTS for a reply."""
    now = now or dt.datetime.now(dt.UTC)
    header = envelope.find(qname((SOAP, "Header")))
    if header is None:
        raise ValueError("the envelope has no soap:Header")
    security = sub(header, (WSSE, "Security"), **{qname((SOAP, "mustUnderstand")): "true"})
    token_id = f"X509-{uuid.uuid4()}"
    sub(security, (WSSE, "BinarySecurityToken"), base64.b64encode(signer.certificate_der).decode(),
         EncodingType=BASE64, ValueType=X509V3, **{_WSU_ID: token_id})
    signature = sub(security, (DS, "Signature"), Id=f"SIG-{uuid.uuid4()}")
    timestamp = sub(security, (WSU, "Timestamp"), **{_WSU_ID: f"TS-{uuid.uuid4()}"})
    sub(timestamp, (WSU, "Created"), _xs_datetime(now))
    sub(timestamp, (WSU, "Expires"), _xs_datetime(now + dt.timedelta(seconds=ttl_seconds)))

    signed_info = sub(signature, (DS, "SignedInfo"))
    sub(signed_info, (DS, "CanonicalizationMethod"), Algorithm=EXC_C14N)
    sub(signed_info, (DS, "SignatureMethod"), Algorithm=signer.signature_method)
    for part in REQUIRED_PARTS if parts is None else parts:
        target = _one(envelope, REQUIRED_PARTS[part])
        if target is None:
            raise ValueError(f"cannot sign: the envelope has no single {part}")
        ref_id = _ensure_id(target, part)
        reference = sub(signed_info, (DS, "Reference"), URI=f"#{ref_id}")
        sub(sub(reference, (DS, "Transforms")), (DS, "Transform"), Algorithm=EXC_C14N)
        sub(reference, (DS, "DigestMethod"), Algorithm=signer.digest_method)
        sub(reference, (DS, "DigestValue"), base64.b64encode(signer.digest(c14n(target))).decode())
    value = signer.sign(c14n(signed_info))
    sub(signature, (DS, "SignatureValue"), base64.b64encode(value).decode())
    token_reference = sub(sub(signature, (DS, "KeyInfo")), (WSSE, "SecurityTokenReference"))
    sub(token_reference, (WSSE, "Reference"), URI=f"#{token_id}", ValueType=X509V3)


@dataclass(frozen=True)
class VerifiedSignature:
    certificate_der: bytes
    signature_method: str


def verify_envelope(envelope: etree._Element, *, now: dt.datetime | None = None,
                    clock_skew_seconds: int = 300, required_parts: Iterable[str] | None = None) -> VerifiedSignature:
    """Check the request signature; raise SignatureError with the specific reason otherwise.

    ``required_parts`` (names of REQUIRED_PARTS; default all: the request profile) must each be referenced; the
    Timestamp's window is checked only when the Timestamp is one of them (an unsigned Timestamp proves nothing)."""
    now = now or dt.datetime.now(dt.UTC)
    signature = _one(envelope, "/s:Envelope/s:Header/wsse:Security/ds:Signature")
    if signature is None:
        raise SignatureError("NO_SIGNATURE", "запрос не подписан: нет wsse:Security/ds:Signature")
    signed_info = signature.find(qname((DS, "SignedInfo")))
    if signed_info is None:
        raise SignatureError("WRONG_SIGNATURE_FORMAT", "в подписи нет SignedInfo")
    _require_algorithm(signed_info, "CanonicalizationMethod", {EXC_C14N})
    method = _require_algorithm(signed_info, "SignatureMethod", set(SIGNATURE_VERIFIERS))
    cert_der = _signer_certificate(envelope, signature)
    cert = x509.load_der_x509_certificate(cert_der)
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise SignatureError(
            "CERT_NOT_VALID",
            f"сертификат подписи недействителен на {now:%Y-%m-%d %H:%M:%S} UTC "
            f"(срок действия {cert.not_valid_before_utc:%Y-%m-%d} – {cert.not_valid_after_utc:%Y-%m-%d})",
        )
    value = base64.b64decode(signature.findtext(qname((DS, "SignatureValue"))) or "")
    try:
        SIGNATURE_VERIFIERS[method](cert_der, c14n(signed_info), value)
    except InvalidSignature:
        raise SignatureError("SIGNATURE_VERIFICATION_ERROR", "значение подписи SignedInfo не верно") from None
    referenced = _check_references(envelope, signed_info)
    parts = tuple(REQUIRED_PARTS if required_parts is None else required_parts)
    _check_coverage(envelope, referenced, parts)
    if "Timestamp" in parts:
        _check_timestamp(envelope, now, clock_skew_seconds)
    return VerifiedSignature(cert_der, method)


def _require_algorithm(signed_info: etree._Element, tag: str, allowed: set[str]) -> str:
    el = signed_info.find(qname((DS, tag)))
    algorithm = el.get("Algorithm") if el is not None else None
    if algorithm not in allowed:
        raise SignatureError("UNKNOWN_ALGORITHM", f"алгоритм {tag} [{algorithm}] не поддерживается")
    return algorithm


def _signer_certificate(envelope: etree._Element, signature: etree._Element) -> bytes:
    ref = signature.find("ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", _NS)
    uri = ref.get("URI", "") if ref is not None else ""
    tokens = envelope.xpath("/s:Envelope/s:Header/wsse:Security/wsse:BinarySecurityToken[@wsu:Id=$id]",
                            namespaces=_NS, id=uri.removeprefix("#"))
    if not uri.startswith("#") or len(tokens) != 1:
        raise SignatureError("NO_END_ENTITY_CERTIFICATE", "сертификат подписи (BinarySecurityToken) не найден")
    der = base64.b64decode(tokens[0].text or "")
    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise SignatureError("SIGNATURE_DECODING_ERROR", "сертификат подписи не читается") from None
    return der


def _check_references(envelope: etree._Element, signed_info: etree._Element) -> set[str]:
    referenced: set[str] = set()
    for reference in signed_info.findall(qname((DS, "Reference"))):
        uri = reference.get("URI", "")
        targets = envelope.xpath("//*[@wsu:Id=$id]", namespaces=_NS, id=uri.removeprefix("#"))
        if not uri.startswith("#") or len(targets) != 1:
            # Zero or several elements with one Id: the classic signature-wrapping attack.
            raise SignatureError("WRONG_SIGNATURE_FORMAT", f"ссылка подписи [{uri}] не указывает ровно на один элемент")
        transforms = [t.get("Algorithm") for t in reference.iter(qname((DS, "Transform")))]
        if any(t != EXC_C14N for t in transforms):
            raise SignatureError("UNKNOWN_ALGORITHM", f"преобразование ссылки [{uri}] не поддерживается")
        digest_method = reference.find(qname((DS, "DigestMethod")))
        algorithm = digest_method.get("Algorithm") if digest_method is not None else None
        if algorithm not in DIGESTS:
            raise SignatureError("UNKNOWN_ALGORITHM", f"алгоритм хэширования [{algorithm}] не поддерживается")
        expected = base64.b64decode(reference.findtext(qname((DS, "DigestValue"))) or "")
        if DIGESTS[algorithm](c14n(targets[0])) != expected:
            name = etree.QName(targets[0]).localname
            raise SignatureError("DIGEST_MISMATCH", f"нарушена целостность подписанного элемента {name} [{uri}]")
        referenced.add(uri.removeprefix("#"))
    return referenced


def _check_coverage(envelope: etree._Element, referenced: set[str], parts: tuple[str, ...]) -> None:
    for part in parts:
        target = _one(envelope, REQUIRED_PARTS[part])
        if target is None or target.get(_WSU_ID) not in referenced:
            raise SignatureError("UNSIGNED_PART", f"элемент {part} отсутствует или не подписан")


def _check_timestamp(envelope: etree._Element, now: dt.datetime, skew: int) -> None:
    created = _parse_xs(envelope.xpath("string(//wsse:Security/wsu:Timestamp/wsu:Created)", namespaces=_NS))
    expires = _parse_xs(envelope.xpath("string(//wsse:Security/wsu:Timestamp/wsu:Expires)", namespaces=_NS))
    if created is None or expires is None:
        raise SignatureError("WRONG_SIGNATURE_FORMAT", "в wsu:Timestamp нет Created/Expires")
    margin = dt.timedelta(seconds=skew)
    if created > now + margin or expires < now - margin:
        raise SignatureError("MESSAGE_EXPIRED", f"срок действия запроса истёк или не наступил ({created}–{expires})")


def _xs_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_xs(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None

