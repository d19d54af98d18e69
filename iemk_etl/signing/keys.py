"""Signing material: certificates and private keys, checked before use, never logged.

A signer signs bytes and names its XMLDSig algorithms; GOST R 34.10-2012-256 (what ЕГИСЗ expects) and
RSA-SHA256 (non-GOST setups) share the interface. Files are PEM (certificate; PKCS#8 key) or PKCS#12.
Before a signer is handed out its certificate is checked: validity period, key usage, key matches.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from iemk_etl import errors
from iemk_etl.errors import ConfigurationError
from iemk_etl.signing import asn1
from iemk_etl.signing.backend import get_backend
from iemk_etl.signing.gost import GostBackend, GostPrivateKey

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
# GOST URIs: the xmldsig-more spelling (what the ИПС signer emits) and CryptoPro's URN spelling.
GOST_2012_256 = "http://www.w3.org/2001/04/xmldsig-more#gostr34102012-gostr34112012-256"
GOST_2012_256_CP = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256"
STREEBOG_256 = "http://www.w3.org/2001/04/xmldsig-more#gostr34112012-256"
STREEBOG_256_CP = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256"


class KeyMaterialError(ConfigurationError, RuntimeError):
    """Signing material that must not be used; the message says why, in Russian (it reaches statuses)."""

    default_kind = errors.KEY_MATERIAL


class Signer(Protocol):
    signature_method: str
    digest_method: str
    certificate_der: bytes

    def sign(self, data: bytes) -> bytes: ...

    def digest(self, data: bytes) -> bytes: ...

    def digest_parts(self, parts: Iterable[bytes]) -> bytes:
        """The digest of the parts' concatenation, fed a part at a time where the hash allows it."""
        ...


@dataclass(frozen=True)
class RsaSha256Signer:
    key: rsa.RSAPrivateKey = field(repr=False)
    certificate_der: bytes = field(repr=False)
    signature_method: str = RSA_SHA256
    digest_method: str = SHA256

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def digest(self, data: bytes) -> bytes:
        return self.digest_parts((data,))

    def digest_parts(self, parts: Iterable[bytes]) -> bytes:
        h = hashes.Hash(hashes.SHA256())
        for part in parts:
            h.update(part)
        return h.finalize()


@dataclass(frozen=True)
class GostSigner:
    key: GostPrivateKey = field(repr=False)
    certificate_der: bytes = field(repr=False)
    backend: GostBackend = field(repr=False)
    signature_method: str = GOST_2012_256
    digest_method: str = STREEBOG_256

    def sign(self, data: bytes) -> bytes:
        return self.backend.sign_digest(self.key, self.backend.streebog256(data))

    def digest(self, data: bytes) -> bytes:
        return self.backend.streebog256(data)

    def digest_parts(self, parts: Iterable[bytes]) -> bytes:
        return self.backend.streebog256_parts(parts)

    @property
    def certificate(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.certificate_der)


AnySigner = RsaSha256Signer | GostSigner


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    algorithm: str

    def days_left(self, now: dt.datetime | None = None) -> int:
        return (self.not_after - (now or dt.datetime.now(dt.UTC))).days

    def describe(self, warn_days: int) -> str:
        left = self.days_left()
        text = f"{self.algorithm}, «{self.subject}», действителен до {self.not_after:%Y-%m-%d} (осталось {left} дн.)"
        if left < 0:
            return text + " — СРОК ИСТЁК"
        return text + (" — СКОРО ИСТЕКАЕТ" if left <= warn_days else "")


def certificate_info(der: bytes) -> CertificateInfo:
    cert = x509.load_der_x509_certificate(der)
    gost = asn1.is_gost_certificate(asn1_x509.Certificate.load(der))
    return CertificateInfo(cert.subject.rfc4514_string(), cert.not_valid_before_utc, cert.not_valid_after_utc,
                           "ГОСТ Р 34.10-2012 (256)" if gost else "RSA")


def read_certificate(data: bytes) -> bytes:
    try:
        return asn1.unpem(data, "CERTIFICATE")
    except asn1.KeyFormatError:
        raise KeyMaterialError("файл сертификата не содержит сертификат X.509 (PEM или DER)") from None


def check_certificate(der: bytes, *, at: dt.datetime | None = None) -> None:
    """Validity period and key usage, as the receiving side will check them."""
    now = at or dt.datetime.now(dt.UTC)
    cert = x509.load_der_x509_certificate(der)
    if now < cert.not_valid_before_utc:
        raise KeyMaterialError(f"сертификат ЭП ещё не действует (с {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC)")
    if now > cert.not_valid_after_utc:
        raise KeyMaterialError(f"срок действия сертификата ЭП истёк {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise KeyMaterialError("назначение ключа сертификата (keyUsage) не допускает электронную подпись")


def signer_from_pem(cert_data: bytes, key_data: bytes, *, backend: GostBackend | None = None,
                    check: bool = True) -> AnySigner:
    """A checked signer from a certificate (PEM/DER) and a PKCS#8 private key (PEM/DER)."""
    der = read_certificate(cert_data)
    if check:
        check_certificate(der)
    if asn1.is_gost_certificate(asn1_x509.Certificate.load(der)):
        return _gost_signer(der, key_data, backend or get_backend())
    return _rsa_signer(der, key_data)


def _gost_signer(der: bytes, key_data: bytes, backend: GostBackend) -> GostSigner:
    try:
        key = asn1.read_private_key(asn1.unpem(key_data, "PRIVATE KEY"))
    except (asn1.KeyFormatError, ValueError):
        raise KeyMaterialError("закрытый ключ не читается как ключ ГОСТ Р 34.10-2012 (PKCS#8)") from None
    if backend.public_key(key) != asn1.certificate_public_key(asn1_x509.Certificate.load(der)):
        raise KeyMaterialError("закрытый ключ не соответствует сертификату ЭП")
    return GostSigner(key, der, backend)


def _rsa_signer(der: bytes, key_data: bytes) -> RsaSha256Signer:
    try:
        key = serialization.load_pem_private_key(key_data, password=None) if b"-----BEGIN" in key_data \
            else serialization.load_der_private_key(key_data, password=None)
    except ValueError:
        raise KeyMaterialError("закрытый ключ не читается (ожидался PKCS#8 без пароля)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyMaterialError(f"неподдерживаемый тип ключа {type(key).__name__}")
    if key.public_key().public_numbers() != x509.load_der_x509_certificate(der).public_key().public_numbers():  # type: ignore[union-attr]
        raise KeyMaterialError("закрытый ключ не соответствует сертификату ЭП")
    return RsaSha256Signer(key, der)


def load_signer(cert_path: Path, key_path: Path, *, backend: GostBackend | None = None,
                check: bool = True) -> AnySigner:
    try:
        return signer_from_pem(cert_path.read_bytes(), key_path.read_bytes(), backend=backend, check=check)
    except FileNotFoundError as exc:
        raise KeyMaterialError(f"не найден файл сертификата или ключа ЭП: {exc.filename}") from None


def load_pkcs12(path: Path, password: str | None, *, backend: GostBackend | None = None) -> AnySigner:
    """A checked signer from a PKCS#12 container: RSA through cryptography, GOST through crypto.pkcs12."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyMaterialError(f"не найден контейнер PKCS#12: {path}") from None
    return pkcs12_signer(data, password, backend=backend)


def pkcs12_signer(data: bytes, password: str | None, *, backend: GostBackend | None = None) -> AnySigner:
    """A checked signer from a PKCS#12 container's bytes (a file's, or a secret handed in by the caller)."""
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except (ValueError, TypeError):
        key = cert = None     # a GOST key (cryptography has none) or a wrong password: read it ourselves
    if key is not None and cert is not None:
        pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return signer_from_pem(cert.public_bytes(serialization.Encoding.DER), pem_key)
    from iemk_etl.signing import pkcs12 as gost_pkcs12

    try:
        certificates, private_keys = gost_pkcs12.read(data, password or "")
    except gost_pkcs12.Pkcs12Error as exc:
        raise KeyMaterialError(str(exc)) from None
    if len(certificates) < 1 or len(private_keys) != 1:
        raise KeyMaterialError("в контейнере PKCS#12 должны быть один закрытый ключ и его сертификат")
    for der in certificates:     # the end-entity certificate is the one matching the key
        try:
            return signer_from_pem(der, private_keys[0], backend=backend)
        except KeyMaterialError as exc:
            last = exc
    raise last
