"""СНИЛС: the check digits, as the Pension Fund defines them and as ИЭМК verifies them."""

from __future__ import annotations

import re

# The check applies only to numbers above 001-001-998 (older numbers were issued without it).
_CHECKED_FROM = 1_001_998


def check_digits(first_nine: str) -> str:
    if not re.fullmatch(r"\d{9}", first_nine):
        raise ValueError(f"СНИЛС must start with 9 digits, got {first_nine!r}")
    total = sum(int(d) * w for d, w in zip(first_nine, range(9, 0, -1), strict=True))
    if total < 100:
        return f"{total:02d}"
    if total in (100, 101):
        return "00"
    rest = total % 101
    return "00" if rest == 100 else f"{rest:02d}"


def normalize(value: str) -> str:
    """Digits only: '112-233-445 95' -> '11223344595'."""
    return re.sub(r"[\s-]", "", value)


def is_valid(value: str) -> bool:
    digits = normalize(value)
    if not re.fullmatch(r"\d{11}", digits):
        return False
    if int(digits[:9]) <= _CHECKED_FROM:
        return True
    return check_digits(digits[:9]) == digits[9:]


def complete(first_nine: str) -> str:
    """The 11-digit СНИЛС for 9 digits, with correct check digits."""
    return first_nine + check_digits(first_nine)


def format_snils(value: str) -> str:
    d = normalize(value)
    return f"{d[0:3]}-{d[3:6]}-{d[6:9]} {d[9:11]}"
