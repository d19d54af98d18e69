"""ASN.1 of GOST R 34.10-2012 keys and certificates (RFC 4491, RFC 9215), on asn1crypto.

``cryptography`` can parse a GOST certificate but cannot give its key, so keys go through these small
definitions: SubjectPublicKeyInfo holds OCTET STRING(X_le‖Y_le); PKCS#8 holds the private key as 32
little-endian bytes (what OpenSSL's gost engine 3.x writes; the older wrapped forms are read too).
"""

from __future__ import annotations

import base64
import re
import secrets

from asn1crypto import core, keys, x509

from iemk_etl import errors
from iemk_etl.errors import IemkError
from iemk_etl.signing import curves
from iemk_etl.signing.gost import GostBackend, GostPrivateKey, GostPublicKey

KEY_2012_256 = "1.2.643.7.1.1.1.1"
SIGN_2012_256 = "1.2.643.7.1.1.3.2"
STREEBOG_256 = "1.2.643.7.1.1.2.2"
STREEBOG_512 = "1.2.643.7.1.1.2.3"


class GostKeyParams(core.Sequence):
    _fields = [
        ("public_key_param_set", core.ObjectIdentifier),
        ("digest_param_set", core.ObjectIdentifier, {"optional": True}),
    ]


class GostKeyAlgorithm(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", GostKeyParams, {"optional": True})]


class GostPublicKeyInfo(core.Sequence):
    _fields = [("algorithm", GostKeyAlgorithm), ("public_key", core.OctetBitString)]


class GostPrivateKeyInfo(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("private_key_algorithm", GostKeyAlgorithm),
        ("private_key", core.OctetString),
        ("attributes", core.Any, {"implicit": 0, "optional": True}),
    ]


def _register_gost_public_key() -> None:
    # asn1crypto refuses to parse a certificate whose key algorithm it does not know; a GOST key is an
    # opaque bit string to it (read with ``read_public_key``).
    original = keys.PublicKeyInfo._public_key_spec

    def spec(info: keys.PublicKeyInfo) -> object:
        if info["algorithm"]["algorithm"].dotted == KEY_2012_256:
            return (core.OctetBitString, None)
        return original(info)

    keys.PublicKeyInfo._spec_callbacks["public_key"] = spec


_register_gost_public_key()


class KeyFormatError(IemkError, ValueError):
    default_kind = errors.KEY_MATERIAL


def _algorithm(paramset: str) -> GostKeyAlgorithm:
    return GostKeyAlgorithm({"algorithm": KEY_2012_256,
                             "parameters": {"public_key_param_set": paramset, "digest_param_set": STREEBOG_256}})


def public_key_der(key: GostPublicKey) -> bytes:
    point = core.OctetString(key.raw_le()).dump()
    return GostPublicKeyInfo({"algorithm": _algorithm(key.paramset), "public_key": point}).dump()


def private_key_der(key: GostPrivateKey) -> bytes:
    return GostPrivateKeyInfo({"version": 0, "private_key_algorithm": _algorithm(key.paramset),
                               "private_key": key.d.to_bytes(32, "little")}).dump()


def read_public_key(spki_der: bytes) -> GostPublicKey:
    info = GostPublicKeyInfo.load(spki_der)
    if info["algorithm"]["algorithm"].dotted != KEY_2012_256:
        raise KeyFormatError(f"not a GOST R 34.10-2012 256 key: {info['algorithm']['algorithm'].dotted}")
    raw = core.OctetString.load(info["public_key"].native).native
    if len(raw) != 64:
        raise KeyFormatError("GOST public key must be 64 bytes")
    paramset = info["algorithm"]["parameters"]["public_key_param_set"].dotted
    return GostPublicKey(paramset, int.from_bytes(raw[:32], "little"), int.from_bytes(raw[32:], "little"))


def read_private_key(pkcs8_der: bytes) -> GostPrivateKey:
    info = GostPrivateKeyInfo.load(pkcs8_der)
    if info["private_key_algorithm"]["algorithm"].dotted != KEY_2012_256:
        raise KeyFormatError("not a GOST R 34.10-2012 256 private key")
    paramset = info["private_key_algorithm"]["parameters"]["public_key_param_set"].dotted
    raw = info["private_key"].native
    if len(raw) == 32:                       # gost engine 3.x: raw little-endian
        return GostPrivateKey(paramset, int.from_bytes(raw, "little"))
    inner = core.Asn1Value.load(raw)         # older tools: OCTET STRING (LE) or INTEGER inside
    if isinstance(inner, core.Integer) or inner.tag == 2:
        return GostPrivateKey(paramset, core.Integer.load(raw).native)
    return GostPrivateKey(paramset, int.from_bytes(core.OctetString.load(raw).native, "little"))


def generate_private_key(paramset: str = curves.DEFAULT_PARAMSET) -> GostPrivateKey:
    q = curves.curve(paramset)["q"]
    return GostPrivateKey(paramset, secrets.randbelow(q - 1) + 1)


# -- PEM ----------------------------------------------------------------------------------------------------

def pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()


def unpem(data: bytes, label: str) -> bytes:
    match = re.search(rb"-----BEGIN " + label.encode() + rb"-----(.*?)-----END " + label.encode() + rb"-----",
                      data, re.S)
    if match is None:
        if data[:1] == b"\x30":     # already DER
            return data
        raise KeyFormatError(f"no PEM block {label}")
    return base64.b64decode(match.group(1))


# -- certificates -------------------------------------------------------------------------------------------

def certificate_public_key(cert: x509.Certificate) -> GostPublicKey:
    return read_public_key(cert["tbs_certificate"]["subject_public_key_info"].dump())


def is_gost_certificate(cert: x509.Certificate) -> bool:
    return cert["tbs_certificate"]["subject_public_key_info"]["algorithm"]["algorithm"].dotted == KEY_2012_256


def verify_certificate_signature(cert: x509.Certificate, issuer_key: GostPublicKey, backend: GostBackend) -> bool:
    if cert["signature_algorithm"]["algorithm"].dotted not in (SIGN_2012_256, KEY_2012_256):
        return False
    digest = backend.streebog256(cert["tbs_certificate"].dump())
    return backend.verify_digest(issuer_key, digest, cert["signature_value"].native)
