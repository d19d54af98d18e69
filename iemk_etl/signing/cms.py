"""Detached CMS SignedData over a СЭМД's exact bytes, CAdES-BES, GOST R 34.10-2012 / 34.11-2012.

One signer per container (РЭМД refuses more: MULTIPLE_SIGNERS), the signer certificate embedded
(NO_END_ENTITY_CERTIFICATE otherwise), signed attributes content-type, signing-time (mandatory:
«В подписи отсутствует атрибут "Дата и время создания"»), message-digest and signingCertificateV2.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from functools import lru_cache

from asn1crypto import algos, cms, core, x509

from iemk_etl import errors
from iemk_etl.errors import CodedError
from iemk_etl.signing import asn1
from iemk_etl.signing.gost import GostBackend, GostPrivateKey


class IssuerSerial(core.Sequence):
    _fields = [("issuer", x509.GeneralNames), ("serial_number", core.Integer)]


class EssCertIdV2(core.Sequence):
    _fields = [
        ("hash_algorithm", algos.DigestAlgorithm, {"default": {"algorithm": "sha256"}}),
        ("cert_hash", core.OctetString),
        ("issuer_serial", IssuerSerial, {"optional": True}),
    ]


class EssCertIdsV2(core.SequenceOf):
    _child_spec = EssCertIdV2


class SigningCertificateV2(core.Sequence):
    _fields = [("certs", EssCertIdsV2), ("policies", core.Any, {"optional": True})]


class SetOfSigningCertificateV2(core.SetOf):
    _child_spec = SigningCertificateV2


def _register_signing_certificate_v2() -> None:
    # RFC 5035 id-aa-signingCertificateV2, which asn1crypto does not know; CAdES-BES requires it.
    oid, name = "1.2.840.113549.1.9.16.2.47", "signing_certificate_v2"
    cms.CMSAttributeType._map[oid] = name
    if cms.CMSAttributeType._reverse_map is not None:
        cms.CMSAttributeType._reverse_map[name] = oid
    cms.CMSAttribute._oid_specs[name] = SetOfSigningCertificateV2


_register_signing_certificate_v2()


class CmsError(CodedError, ValueError):
    """A signature that cannot be accepted; ``code`` follows НСИ 1.2.643.5.1.13.13.99.2.305 where one fits."""

    default_kind = errors.BAD_SIGNATURE


@dataclass(frozen=True)
class VerifiedCms:
    certificate: x509.Certificate
    signing_time: dt.datetime

    @property
    def subject(self) -> str:
        return self.certificate.subject.human_friendly


def _streebog_algorithm() -> algos.DigestAlgorithm:
    return algos.DigestAlgorithm({"algorithm": asn1.STREEBOG_256})


# Lengths of what changes from one document to the next: the UTCTime's value (YYMMDDHHMMSSZ), the Streebog-256
# message digest, and the GOST R 34.10-2012 (256) signature s‖r.
_TIME_LENGTH, _DIGEST_LENGTH, _SIGNATURE_LENGTH = 13, 32, 64


def sign_detached(data: bytes, key: GostPrivateKey, certificate: x509.Certificate, backend: GostBackend, *,
                  signing_time: dt.datetime | None = None) -> bytes:
    """DER of ContentInfo(SignedData) without encapsulated content."""
    return sign_detached_der(data, key, certificate.dump(), backend, signing_time=signing_time)


def sign_detached_der(data: bytes, key: GostPrivateKey, certificate_der: bytes, backend: GostBackend, *,
                      signing_time: dt.datetime | None = None) -> bytes:
    """``sign_detached`` by the certificate's DER: the container's bytes are the signer's template (built once per
    certificate, ``_template``) with this document's signing time, digest and signature put in their places."""
    when = _signing_time(signing_time)
    template = _template(certificate_der, backend)
    time_value = core.UTCTime(when).contents
    if template is None or len(time_value) != _TIME_LENGTH:
        return _build(data, key, x509.Certificate.load(certificate_der), backend, when)
    attrs = _fill_attributes(template, time_value, backend.streebog256(data))
    # The signature covers the attributes as a DER SET OF, not as the [0]-tagged field they are stored in.
    signature = backend.sign_digest(key, backend.streebog256(attrs))
    if len(signature) != _SIGNATURE_LENGTH:     # not from a GOST-256 key: no place for it in the template
        return _assemble(cms.CMSAttributes.load(attrs), x509.Certificate.load(certificate_der), signature)
    return _fill(template, attrs, signature)


def _signing_time(signing_time: dt.datetime | None) -> dt.datetime:
    return (signing_time or dt.datetime.now(dt.UTC)).replace(microsecond=0)


def _build(data: bytes, key: GostPrivateKey, certificate: x509.Certificate, backend: GostBackend,
           when: dt.datetime) -> bytes:
    """The container built field by field with asn1crypto: what the template is made from, and the reference the
    tests compare it with."""
    signed_attrs = _signed_attributes(certificate, backend, when, backend.streebog256(data))
    return _assemble(signed_attrs, certificate, backend.sign_digest(key, backend.streebog256(signed_attrs.dump())))


def _signed_attributes(certificate: x509.Certificate, backend: GostBackend, when: dt.datetime,
                       digest: bytes) -> cms.CMSAttributes:
    ess = {"certs": [{"hash_algorithm": _streebog_algorithm(),
                      "cert_hash": backend.streebog256(certificate.dump()),
                      "issuer_serial": {"issuer": [x509.GeneralName(name="directory_name", value=certificate.issuer)],
                                        "serial_number": certificate.serial_number}}]}
    return cms.CMSAttributes([
        {"type": "content_type", "values": ["data"]},
        {"type": "signing_time", "values": [cms.Time(name="utc_time", value=when)]},
        {"type": "message_digest", "values": [digest]},
        {"type": "signing_certificate_v2", "values": [ess]},
    ])


def _assemble(signed_attrs: cms.CMSAttributes, certificate: x509.Certificate, signature: bytes) -> bytes:
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": certificate.issuer, "serial_number": certificate.serial_number}),
        "digest_algorithm": _streebog_algorithm(),
        "signed_attrs": signed_attrs,
        "signature_algorithm": {"algorithm": asn1.KEY_2012_256},
        "signature": signature,
    })
    signed_data = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [_streebog_algorithm()],
        "encap_content_info": {"content_type": "data"},
        "certificates": [certificate],
        "signer_infos": [signer],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


@dataclass(frozen=True)
class _Template:
    """A signer's container cut around what changes per document: ``head`` ‖ [0] signed attributes ‖ ``middle`` ‖
    signature ‖ ``tail``; inside the attributes (kept as their SET OF), the signing time's and the digest's offsets."""
    attrs: bytes
    time_at: int
    digest_at: int
    head: bytes
    middle: bytes
    tail: bytes


@lru_cache(maxsize=64)
def _template(certificate_der: bytes, backend: GostBackend) -> _Template | None:
    """Made from two containers built by ``_build``'s parts with different placeholder values, and kept only if
    putting the second's values into the first's template gives exactly the second (fixed lengths, the same
    attribute order: DER sorts a SET OF by encoding). None: build each container field by field instead."""
    certificate = x509.Certificate.load(certificate_der)
    samples = [(dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC), secrets.token_bytes(_DIGEST_LENGTH),
                secrets.token_bytes(_SIGNATURE_LENGTH)),
               (dt.datetime(2039, 11, 12, 13, 14, 15, tzinfo=dt.UTC), secrets.token_bytes(_DIGEST_LENGTH),
                secrets.token_bytes(_SIGNATURE_LENGTH))]
    built = []
    for when, digest, signature in samples:
        attrs = _signed_attributes(certificate, backend, when, digest)
        built.append((attrs.dump(), _assemble(attrs, certificate, signature)))
    (attrs, full), (when, digest, signature) = built[0], samples[0]
    time_value = core.UTCTime(when).contents
    tagged = b"\xa0" + attrs[1:]
    if any(whole.count(part) != 1 for whole, part in ((attrs, time_value), (attrs, digest), (full, tagged),
                                                       (full, signature))):
        return None
    at, sig_at = full.index(tagged), full.index(signature)
    template = _Template(attrs, attrs.index(time_value), attrs.index(digest), full[:at],
                         full[at + len(tagged):sig_at], full[sig_at + _SIGNATURE_LENGTH:])
    when, digest, signature = samples[1]
    again = _fill(template, _fill_attributes(template, core.UTCTime(when).contents, digest), signature)
    if sig_at < at + len(tagged) or again != built[1][1]:
        return None
    return template


def _fill_attributes(template: _Template, time_value: bytes, digest: bytes) -> bytes:
    attrs = bytearray(template.attrs)
    attrs[template.time_at:template.time_at + _TIME_LENGTH] = time_value
    attrs[template.digest_at:template.digest_at + _DIGEST_LENGTH] = digest
    return bytes(attrs)


def _fill(template: _Template, attrs: bytes, signature: bytes) -> bytes:
    return b"".join((template.head, b"\xa0", attrs[1:], template.middle, signature, template.tail))


def _attribute(signer: cms.SignerInfo, name: str) -> core.Asn1Value | None:
    for attr in signer["signed_attrs"]:
        if attr["type"].native == name:
            return attr["values"][0]
    return None


def verify_detached(data: bytes, signature_der: bytes, backend: GostBackend, *,
                    data_digest: bytes | None = None) -> VerifiedCms:
    """Check a detached signature over ``data``; raise CmsError with the specific reason. ``data_digest``, the
    Streebog-256 of ``data`` when the caller has it (several signatures over one large document), saves hashing
    it again."""
    try:
        info = cms.ContentInfo.load(signature_der)
        signed = info["content"]
        signers = list(signed["signer_infos"])
    except (ValueError, TypeError, KeyError) as exc:
        raise CmsError("SIGNATURE_DECODING_ERROR", f"контейнер подписи не читается: {exc}") from None
    if info["content_type"].native != "signed_data":
        raise CmsError("WRONG_SIGNATURE_FORMAT", "ожидался CMS SignedData")
    if len(signers) != 1:
        raise CmsError("MULTIPLE_SIGNERS", "В контейнере ЭП указано более одного подписанта")
    signer = signers[0]
    cert = _signer_certificate(signed, signer)
    if signer["digest_algorithm"]["algorithm"].dotted != asn1.STREEBOG_256 or \
            signer["signature_algorithm"]["algorithm"].dotted not in (asn1.KEY_2012_256, asn1.SIGN_2012_256):
        raise CmsError("UNKNOWN_ALGORITHM", "алгоритм подписи не ГОСТ Р 34.10-2012 (256)")
    if not signer["signed_attrs"]:
        raise CmsError("WRONG_SIGNATURE_FORMAT", "в подписи нет подписанных атрибутов")
    signing_time = _attribute(signer, "signing_time")
    if signing_time is None:
        raise CmsError("WRONG_SIGNATURE_FORMAT", 'В подписи отсутствует атрибут "Дата и время создания"')
    digest = _attribute(signer, "message_digest")
    if digest is None or digest.native != (data_digest or backend.streebog256(data)):
        raise CmsError("DIGEST_MISMATCH", "хэш документа не совпадает с подписанным (документ изменён)")
    _check_ess(signer, cert, backend)
    attrs = signer["signed_attrs"].dump()
    to_sign = b"\x31" + attrs[1:]   # the received encoding, re-tagged [0] -> SET OF, never re-encoded
    if not backend.verify_digest(asn1.certificate_public_key(cert), backend.streebog256(to_sign),
                                 signer["signature"].native):
        raise CmsError("SIGNATURE_VERIFICATION_ERROR", "подпись не верна")
    return VerifiedCms(cert, signing_time.native)


def _signer_certificate(signed: cms.SignedData, signer: cms.SignerInfo) -> x509.Certificate:
    sid = signer["sid"]
    for choice in signed["certificates"] or []:
        cert = choice.chosen
        if not isinstance(cert, x509.Certificate):
            continue
        if sid.name == "issuer_and_serial_number" and cert.issuer == sid.chosen["issuer"] and \
                cert.serial_number == sid.chosen["serial_number"].native:
            if not asn1.is_gost_certificate(cert):
                raise CmsError("UNKNOWN_ALGORITHM", "сертификат подписанта не ГОСТ Р 34.10-2012")
            return cert
    raise CmsError("NO_END_ENTITY_CERTIFICATE", "сертификат подписанта не вложен в контейнер подписи")


def _check_ess(signer: cms.SignerInfo, cert: x509.Certificate, backend: GostBackend) -> None:
    ess = _attribute(signer, "signing_certificate_v2")
    if ess is None:
        raise CmsError("WRONG_SIGNATURE_FORMAT", "нет атрибута signingCertificateV2 (CAdES-BES)")
    first = ess["certs"][0]
    if first["hash_algorithm"]["algorithm"].dotted == asn1.STREEBOG_256 and \
            first["cert_hash"].native != backend.streebog256(cert.dump()):
        raise CmsError("VALUE_MISMATCH_METADATA_AND_CERTIFICATE",
                       "signingCertificateV2 не соответствует сертификату подписанта")
