"""The storage rule, checked on the source: every SQL statement lives in ``iemk_etl.store``, and only
``iemk_etl.store.mis`` names a ``mis.*`` table (the МИС adapter a hospital with another schema replaces)."""

from __future__ import annotations

import re
from pathlib import Path

import iemk_etl

PACKAGE = Path(iemk_etl.__file__).parent
SQL = re.compile(r"\b(SELECT\s+\S|INSERT\s+INTO|UPDATE\s+\w+(\.\w+)?\s+SET|DELETE\s+FROM)\b")
MIS_TABLE = re.compile(r"\b(FROM|JOIN|INTO|UPDATE)\s+mis\.\w+")
# The emulator stands for ИЭМК and keeps its own tables; the CLI is being split into modules without SQL.
NOT_PRODUCTION = ("emulator",)


def _sources(*, outside: str) -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")
            if not p.relative_to(PACKAGE).as_posix().startswith((outside, *NOT_PRODUCTION))}


def test_sql_lives_in_store_only():
    offenders = sorted(name for name, text in _sources(outside="store/").items() if SQL.search(text))
    assert offenders == []


def test_only_the_mis_adapter_names_mis_tables():
    offenders = sorted(name for name, text in _sources(outside="store/mis/").items() if MIS_TABLE.search(text))
    assert offenders == []
