"""WS-Security message signature of SOAP requests, the ИПС profile.

One place signs every request and one place verifies (used by the emulator): a BinarySecurityToken
with the signer certificate, a Timestamp, and an XMLDSig Signature with one exclusive-c14n Reference
to each of Body, Timestamp and the WS-Addressing headers MessageID, ReplyTo, To, Action.
The algorithm comes from the signer, so GOST R 34.10-2012 plugs in without touching this module.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from iemk_etl.protocol.soap import SOAP, WSA, Placeholder
from iemk_etl.protocol.xml import qname, sub
from iemk_etl.signing import xmldsig
from iemk_etl.signing.keys import Signer
from iemk_etl.signing.xmldsig import (  # noqa: F401  (re-exported: public API here, machinery in xmldsig)
    DIGESTS,
    DS,
    EXC_C14N,
    SIGNATURE_VERIFIERS,
    WSSE,
    WSU,
    SignatureError,
    UnsupportedSignatureError,
)

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

# The ИПС profile within XMLDSig: exclusive c14n only, references by wsu:Id only.
PROFILE = xmldsig.Profile(canonicalizations=frozenset({EXC_C14N}), transforms=frozenset({EXC_C14N}),
                          id_attributes=(_WSU_ID,))


def c14n(element: etree._Element) -> bytes:
    return xmldsig.canonicalize(element, EXC_C14N)


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
                  now: dt.datetime | None = None, parts: Iterable[str] | None = None,
                  placeholder: Placeholder | None = None) -> None:
    """Add wsse:Security with the signature to a SOAP 1.2 envelope, in place; ``parts`` (names of REQUIRED_PARTS,
    default all of them: the request profile) are the elements referenced, RESPONSE_PARTS for a reply.

    With ``placeholder`` the envelope holds its token where the document's base64 goes (ITI-41): digests are
    computed over the canonical bytes with the base64 spliced in, so the signature is the one the envelope with
    the whole text would get, and the sender splices the same base64 into the serialised envelope."""
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
        xmldsig.add_reference(signed_info, target, f"#{_ensure_id(target, part)}", signer, transforms=(EXC_C14N,),
                              expand=placeholder.splice if placeholder is not None else None)
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
    verified = xmldsig.verify_signature(signature, resolve_certificate=lambda sig: _signer_certificate(envelope, sig),
                                        now=now, profile=PROFILE)
    parts = tuple(REQUIRED_PARTS if required_parts is None else required_parts)
    _check_coverage(envelope, verified.references, parts)
    if "Timestamp" in parts:
        _check_timestamp(envelope, now, clock_skew_seconds)
    return VerifiedSignature(verified.certificate_der, verified.signature_method)


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


def _check_coverage(envelope: etree._Element, references: tuple[xmldsig.VerifiedReference, ...],
                    parts: tuple[str, ...]) -> None:
    # By identity: the element at the profile's place must be the very element whose digest was checked.
    for part in parts:
        target = _one(envelope, REQUIRED_PARTS[part])
        if target is None or not any(r.element is target for r in references):
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

