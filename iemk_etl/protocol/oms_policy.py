"""The ОМС policy of the единый образец (ЕНП, 16 digits): its control digit, the 16th.

ФФОМС computes it by the Mod10 scheme of ISO/HL7 27931:2009 (HL7 v2.5, check digit scheme M10; in Russia
ГОСТ Р ИСО/HL7 27931): of the first 15 digits, the ones in odd positions counted from the right, read as a number,
are doubled; the ones in even positions are written before it; the digits of the result are summed; the control
digit is what brings the sum up to the next multiple of 10. docs/nsi.md says where this was found.
"""

from __future__ import annotations

import re


def control_digit(first_fifteen: str) -> str:
    if not re.fullmatch(r"\d{15}", first_fifteen):
        raise ValueError(f"ОМС policy must start with 15 digits, got {first_fifteen!r}")
    from_right = first_fifteen[::-1]
    odd, even = from_right[0::2], from_right[1::2]
    number = even + str(int(odd) * 2)
    return str(-sum(int(d) for d in number) % 10)


def is_valid(value: str) -> bool:
    digits = value.strip()
    return bool(re.fullmatch(r"\d{16}", digits)) and control_digit(digits[:15]) == digits[15]


def complete(first_fifteen: str) -> str:
    """The 16-digit policy number for its first 15 digits."""
    return first_fifteen + control_digit(first_fifteen)
