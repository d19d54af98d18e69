"""Signing material: the certificate and key that sign every request to ИЭМК.

GOST R 34.10-2012 keys come with the signing work; until then requests are signed with RSA-SHA256,
which the emulator verifies the same way. Keys are read from files named by settings and never logged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


class KeyMaterialError(RuntimeError):
    pass


@dataclass(frozen=True)
class RsaSha256Signer:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    signature_method: str = RSA_SHA256
    digest_method: str = SHA256

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def __repr__(self) -> str:  # never print the key
        return f"RsaSha256Signer(subject={self.certificate.subject.rfc4514_string()!r})"


def load_signer(cert_path: Path, key_path: Path) -> RsaSha256Signer:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise KeyMaterialError(f"signing certificate or key not found: {exc.filename}") from None
    except ValueError as exc:
        raise KeyMaterialError(f"signing certificate or key cannot be read: {type(exc).__name__}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyMaterialError(f"unsupported key type {type(key).__name__}; RSA is supported until GOST lands")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise KeyMaterialError("the signing key does not match the certificate")
    return RsaSha256Signer(key, cert)


def create_dev_certificate(out_dir: Path, *, common_name: str = "iemk-etl demo client",
                           days: int = 365, not_before: dt.datetime | None = None) -> tuple[Path, Path]:
    """A self-signed RSA test certificate and key (PEM) for the demo and the tests."""
    out_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.COUNTRY_NAME, "RU")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = out_dir / "client-cert.pem", out_dir / "client-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def ensure_dev_certificate(out_dir: Path) -> tuple[Path, Path]:
    cert_path, key_path = out_dir / "client-cert.pem", out_dir / "client-key.pem"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
            return cert_path, key_path
    return create_dev_certificate(out_dir)
