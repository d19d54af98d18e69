"""GOST R 34.10-2012 256-bit curves, by the OIDs certificates carry (RFC 4357, RFC 7836)."""

from __future__ import annotations

from gostcrypto import gostsignature

from iemk_etl import errors
from iemk_etl.errors import IemkError

_TC26 = gostsignature.CURVES_R_1323565_1_024_2019

# The standard's example curve (id-GostR3410-2001-TestParamSet), used by its known-answer test.
TEST_PARAMSET = "1.2.643.2.2.35.0"
TEST_CURVE = {
    "p": 0x8000000000000000000000000000000000000000000000000000000000000431, "a": 7,
    "b": 0x5FBFF498AA938CE739B8E022FBAFEF40563F6E6A3472FC2A514C0CE9DAE23B7E,
    "m": 0x8000000000000000000000000000000150FE8A1892976154C59CFC193ACCF5B3,
    "q": 0x8000000000000000000000000000000150FE8A1892976154C59CFC193ACCF5B3,
    "x": 2, "y": 0x08E2A8A0E65147D4BD6316030E16D19C85C97F0A9CA267122B96ABBCEA7E8FC8,
}

# CryptoPro-A = XchA = TC26-256-B; CryptoPro-B = TC26-256-C; CryptoPro-C = XchB = TC26-256-D.
CURVES: dict[str, dict[str, int]] = {
    TEST_PARAMSET: TEST_CURVE,
    "1.2.643.2.2.35.1": _TC26["id-tc26-gost-3410-2012-256-paramSetB"],
    "1.2.643.2.2.36.0": _TC26["id-tc26-gost-3410-2012-256-paramSetB"],
    "1.2.643.2.2.35.2": _TC26["id-tc26-gost-3410-2012-256-paramSetC"],
    "1.2.643.2.2.35.3": _TC26["id-tc26-gost-3410-2012-256-paramSetD"],
    "1.2.643.2.2.36.1": _TC26["id-tc26-gost-3410-2012-256-paramSetD"],
    "1.2.643.7.1.2.1.1.1": _TC26["id-tc26-gost-3410-2012-256-paramSetA"],
    "1.2.643.7.1.2.1.1.2": _TC26["id-tc26-gost-3410-2012-256-paramSetB"],
    "1.2.643.7.1.2.1.1.3": _TC26["id-tc26-gost-3410-2012-256-paramSetC"],
    "1.2.643.7.1.2.1.1.4": _TC26["id-tc26-gost-3410-2012-256-paramSetD"],
}

# OpenSSL's gost engine names for `genpkey -pkeyopt paramset:X`.
OPENSSL_PARAMSET = {"1.2.643.2.2.35.1": "A", "1.2.643.2.2.35.2": "B", "1.2.643.2.2.35.3": "C",
                    "1.2.643.2.2.36.0": "XA", "1.2.643.2.2.36.1": "XB", "1.2.643.7.1.2.1.1.1": "TCA",
                    "1.2.643.7.1.2.1.1.2": "TCB", "1.2.643.7.1.2.1.1.3": "TCC", "1.2.643.7.1.2.1.1.4": "TCD"}

DEFAULT_PARAMSET = "1.2.643.2.2.35.1"  # CryptoPro-A: what accredited CAs issue most


class UnknownCurveError(IemkError, ValueError):
    default_kind = errors.KEY_MATERIAL


def curve(paramset_oid: str) -> dict[str, int]:
    try:
        return CURVES[paramset_oid]
    except KeyError:
        raise UnknownCurveError(f"GOST R 34.10-2012 256 paramset {paramset_oid} is not supported") from None
