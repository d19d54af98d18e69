"""Certificate pins: which certificates a signature may come from.

Used for ИЭМК's replies (IEMK_REPLY_CERTIFICATES) and, in the emulator, for the systems registered in ЕГИСЗ
(IEMK_EMULATOR_CLIENTS): a valid signature by any other certificate is not enough. A pin is the SHA-256 fingerprint
of the certificate's DER, given as such (hex, colons and a ``sha256:`` prefix allowed) or as the path of a
certificate file (PEM, every certificate in it, or DER).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from iemk_etl.errors import ConfigurationError

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


class PinError(ConfigurationError, ValueError):
    """A pin that is neither a SHA-256 fingerprint nor a readable certificate file."""


def fingerprint(cert_der: bytes) -> str:
    """The SHA-256 fingerprint of a certificate, lowercase hex without separators."""
    return hashlib.sha256(cert_der).hexdigest()


def as_fingerprint(text: str) -> str | None:
    """``text`` as a normalised SHA-256 fingerprint, or None when it is not one."""
    value = text.strip().lower().removeprefix("sha256:").replace(":", "")
    return value if _FINGERPRINT.match(value) else None


def load_pin(entry: str) -> frozenset[str]:
    """The fingerprints one entry pins: itself, or every certificate in the file it names."""
    found = as_fingerprint(entry)
    if found is not None:
        return frozenset({found})
    path = Path(entry.strip()).expanduser()
    try:
        data = path.read_bytes()
    except OSError:
        raise PinError(f"закрепление сертификата [{entry}]: не отпечаток SHA-256 и не файл сертификата") from None
    try:
        pem = b"-----BEGIN" in data
        certs = x509.load_pem_x509_certificates(data) if pem else [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise PinError(f"закрепление сертификата [{entry}]: файл не читается как сертификат X.509") from None
    return frozenset(fingerprint(_der(c)) for c in certs)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@dataclass(frozen=True)
class Pins:
    """A set of pinned fingerprints; empty means nothing is pinned (any certificate whose signature verifies)."""

    fingerprints: frozenset[str] = frozenset()

    @classmethod
    def load(cls, entries: Iterable[str]) -> Pins:
        pinned: set[str] = set()
        for entry in entries:
            pinned |= load_pin(entry)
        return cls(frozenset(pinned))

    def __bool__(self) -> bool:
        return bool(self.fingerprints)

    def allows(self, cert_der: bytes) -> bool:
        """Whether the certificate is pinned (always False for an empty set: ask ``bool(pins)`` first)."""
        return fingerprint(cert_der) in self.fingerprints
