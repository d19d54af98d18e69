"""GOST R 34.10-2012 (256) key values and the interface every GOST backend implements.

Kept apart from ``backend`` (the implementations) and ``asn1`` (their DER forms) so that both depend on this
module and not on each other: the OpenSSL backend needs the DER of a key, and the ASN.1 code needs the key types.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from gostcrypto import gostsignature

from iemk_etl.signing import curves


@dataclass(frozen=True)
class GostPublicKey:
    paramset: str
    x: int
    y: int

    def raw_le(self) -> bytes:
        """X‖Y little-endian, as in SubjectPublicKeyInfo."""
        return self.x.to_bytes(32, "little") + self.y.to_bytes(32, "little")


@dataclass(frozen=True)
class GostPrivateKey:
    paramset: str
    d: int

    def __repr__(self) -> str:  # never print the key
        return f"GostPrivateKey(paramset={self.paramset!r})"

    def public_key(self) -> GostPublicKey:
        raw = gostsignature.new(gostsignature.MODE_256, curves.curve(self.paramset)).public_key_generate(
            bytearray(self.d.to_bytes(32, "big")))
        return GostPublicKey(self.paramset, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


class GostBackend(Protocol):
    name: str

    def streebog256(self, data: bytes) -> bytes: ...

    def streebog256_parts(self, parts: Iterable[bytes]) -> bytes: ...

    def streebog512(self, data: bytes) -> bytes: ...

    def sign_digest(self, key: GostPrivateKey, digest: bytes) -> bytes: ...

    def public_key(self, key: GostPrivateKey) -> GostPublicKey: ...

    def verify_digest(self, key: GostPublicKey, digest: bytes, signature: bytes) -> bool: ...
