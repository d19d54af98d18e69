"""ОГРН and ОГРНИП: the control digit, as ФНС defines the registration numbers (docs/nsi.md cites it).

ОГРН is 13 digits, the last being (the first 12 as a number mod 11) mod 10; ОГРНИП is 15 digits, the last being
(the first 14 mod 13) mod 10.
"""

from __future__ import annotations

import re

# Length of the whole number → the modulus its first digits are taken by.
_MODULUS = {13: 11, 15: 13}


def control_digit(body: str) -> str:
    """The control digit for the first 12 (ОГРН) or 14 (ОГРНИП) digits."""
    if not re.fullmatch(r"\d{12}|\d{14}", body):
        raise ValueError(f"ОГРН body must be 12 or 14 digits, got {body!r}")
    return str(int(body) % _MODULUS[len(body) + 1] % 10)


def is_valid(value: str, *, length: int | None = None) -> bool:
    """True for a 13-digit ОГРН or 15-digit ОГРНИП (only ``length`` digits, when given) with the right control digit."""
    digits = value.strip()
    if not re.fullmatch(r"\d{13}|\d{15}", digits) or (length is not None and len(digits) != length):
        return False
    return control_digit(digits[:-1]) == digits[-1]


def complete(body: str) -> str:
    """The full ОГРН/ОГРНИП for its first 12/14 digits."""
    return body + control_digit(body)
