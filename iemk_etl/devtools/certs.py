"""Self-signed test certificates and keys: for the demo, the tests and a developer's machine, never production.

Production code loads signing material (``iemk_etl.signing.keys``, ``keystore``) and must not import this module.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from iemk_etl.signing import asn1, keys
from iemk_etl.signing.backend import get_backend
from iemk_etl.signing.gost import GostBackend, GostPrivateKey

if TYPE_CHECKING:
    from iemk_etl.signing.keystore import KeyStore


def self_signed_certificate(key: GostPrivateKey, backend: GostBackend, *, common_name: str,
                            organization: str = "iemk-etl test", days: int = 365,
                            not_before: dt.datetime | None = None,
                            key_usage: tuple[str, ...] = ("digital_signature", "non_repudiation"),
                            ) -> asn1_x509.Certificate:
    """A self-signed GOST 2012-256 test certificate (CA:FALSE), the shape accredited CAs issue."""
    start = (not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(microsecond=0)
    name_fields = {"common_name": common_name, "organization_name": organization, "country_name": "RU"}
    subject = asn1_x509.Name.build(name_fields)
    spki = asn1_keys.PublicKeyInfo.load(asn1.public_key_der(key.public_key()))
    tbs = asn1_x509.TbsCertificate({
        "version": "v3",
        "serial_number": secrets.randbits(63),
        "signature": {"algorithm": asn1.SIGN_2012_256},
        "issuer": subject,
        "validity": {"not_before": asn1_x509.Time(name="utc_time", value=start),
                     "not_after": asn1_x509.Time(name="utc_time", value=start + dt.timedelta(days=days))},
        "subject": subject,
        "subject_public_key_info": spki,
        "extensions": [
            {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": False}},
            {"extn_id": "key_usage", "critical": True, "extn_value": set(key_usage)},
        ],
    })
    signature = backend.sign_digest(key, backend.streebog256(tbs.dump()))
    return asn1_x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": {"algorithm": asn1.SIGN_2012_256},
                                  "signature_value": signature})


def create_dev_certificate(out_dir: Path, *, algorithm: str = "gost", common_name: str = "iemk-etl test client",
                           days: int = 365, not_before: dt.datetime | None = None, prefix: str = "client",
                           backend: GostBackend | None = None) -> tuple[Path, Path]:
    """A self-signed test certificate and PKCS#8 key (PEM): GOST R 34.10-2012-256 by default, or RSA."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if algorithm == "gost":
        key = asn1.generate_private_key()
        cert = self_signed_certificate(key, backend or get_backend(), common_name=common_name, days=days,
                                       not_before=not_before)
        cert_pem, key_pem = asn1.pem("CERTIFICATE", cert.dump()), asn1.pem("PRIVATE KEY", asn1.private_key_der(key))
    elif algorithm == "rsa":
        cert_pem, key_pem = _rsa_dev_certificate(common_name, days, not_before)
    else:
        raise ValueError(f"algorithm {algorithm!r}: use gost or rsa")
    cert_path, key_path = out_dir / f"{prefix}-cert.pem", out_dir / f"{prefix}-key.pem"
    cert_path.write_bytes(cert_pem)
    write_private(key_path, key_pem)
    return cert_path, key_path


def write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only (0600), also over an existing file of another mode.

    The bytes go to a new 0600 file beside it that then replaces the old one, so the key is never readable
    by others, not even for a moment, whatever mode the file it replaces had."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)   # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)    # whatever the umask did
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _rsa_dev_certificate(common_name: str, days: int, not_before: dt.datetime | None) -> tuple[bytes, bytes]:
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
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def ensure_dev_certificate(out_dir: Path, *, algorithm: str = "gost", prefix: str = "client",
                           common_name: str = "iemk-etl test client") -> tuple[Path, Path]:
    """The test certificate in ``out_dir``, made anew unless one of ``algorithm`` is there, valid past tomorrow and
    issued to ``common_name`` (documents are checked to be signed by their author: a staff id re-seeded under
    another name needs that person's certificate)."""
    cert_path, key_path = out_dir / f"{prefix}-cert.pem", out_dir / f"{prefix}-key.pem"
    if cert_path.exists() and key_path.exists():
        try:
            signer = keys.load_signer(cert_path, key_path)
            left = keys.certificate_info(signer.certificate_der).days_left()
            if left > 1 and (algorithm == "gost") == isinstance(signer, keys.GostSigner) and \
                    _common_name(signer.certificate_der) == common_name:
                return cert_path, key_path
        except keys.KeyMaterialError:
            pass
    return create_dev_certificate(out_dir, algorithm=algorithm, prefix=prefix, common_name=common_name)


def _common_name(der: bytes) -> str | None:
    names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def ensure_test_material(store: KeyStore, mo_code: str, staff: list[tuple[str, str]]) -> None:
    """Self-signed GOST test certificates for an МО and its staff, laid out as ``store`` reads them."""
    folder = store.root / mo_code
    ensure_dev_certificate(folder, prefix="request", common_name=f"Информационная система {mo_code}")
    ensure_dev_certificate(folder, prefix="mo", common_name=f"МО {mo_code}"[:64])
    for local_id, full_name in staff:
        ensure_dev_certificate(folder / "staff", prefix=local_id, common_name=full_name[:64])
