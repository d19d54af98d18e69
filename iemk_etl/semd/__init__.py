"""Forming the six СЭМД kinds from МИС data: one builder module per kind over one shared CDA header.

``build(case)`` returns the document bytes of a case (see ``model.Case``); it raises ``FormingError`` with a
user-facing Russian text when the МИС data cannot make a valid document (e.g. a zipped report).
"""

from __future__ import annotations

from importlib import import_module
from typing import Protocol

from iemk_etl.errors import DataError
from iemk_etl.semd.model import Case

# НСИ 1520 code → the builder module, named after the document it forms.
BUILDERS = {
    41: "inpatient_epicrisis",
    42: "outpatient_epicrisis",
    43: "referral",
    119: "consultation",
    174: "instrumental_report",
    186: "lab_report",
}


class FormingError(DataError, ValueError):
    """The МИС data cannot form this document; the message is shown to users as is."""


class _Builder(Protocol):
    def build(self, case: Case) -> bytes: ...


def builder(kind: int) -> _Builder:
    try:
        name = BUILDERS[kind]
    except KeyError:
        raise FormingError(f"СЭМД вида {kind} (НСИ 1520) не формируется; поддерживаются: {sorted(BUILDERS)}") from None
    return import_module(f"iemk_etl.semd.{name}")  # type: ignore[return-value]


def build(case: Case) -> bytes:
    return builder(case.kind).build(case)
