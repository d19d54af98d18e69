"""The error taxonomy: closed, complete for the federal codes we know, and deciding on who acts and when."""

from __future__ import annotations

import csv
import importlib
import inspect
import os
import pkgutil
from pathlib import Path

import pytest

import iemk_etl
from iemk_etl import errors
from iemk_etl.errors import Actor, Retry

# ../shared beside the repository, or IEMK_SHARED_DIR (a worktree elsewhere).
SHARED = Path(os.environ.get("IEMK_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
NSI_305 = SHARED / "nsi" / "305_remd_message_codes_v3.18.csv"


def test_every_nsi_305_code_maps_to_one_entry():
    if not NSI_305.is_file():
        pytest.skip(f"НСИ 305 extract not found at {NSI_305}")
    with NSI_305.open(encoding="utf-8") as f:
        mnemonics = [row["mnemonic"] for row in csv.DictReader(f)]
    assert len(mnemonics) == 127
    assert [m for m in mnemonics if not errors.known(m)] == []


def test_codes_are_unique_and_kinds_complete():
    catalogue = errors.catalogue()
    assert all(code == k.code for code, k in catalogue.items())
    assert all(k.title and isinstance(k.actor, Actor) and isinstance(k.retry, Retry) for k in catalogue.values())
    with pytest.raises(ValueError, match="defined twice"):
        errors._kind("FLK_XSD", "again", Actor.NOBODY, Retry.NEVER)


@pytest.mark.parametrize(("code", "subcode", "actor", "retry"), [
    ("Receiver", None, Actor.IEMK, Retry.NEXT_RUN),
    ("Receiver", "ServiceError", Actor.IEMK, Retry.NEXT_RUN),
    ("Sender", "egis:UnknownClient", Actor.ADMIN, Retry.AFTER_FIX),        # a wrong clientEntityId
    ("Sender", "wsse:MESSAGE_EXPIRED", Actor.ADMIN, Retry.AFTER_FIX),      # our clock
    ("Sender", "wsse:SIGNATURE_VERIFICATION_ERROR", Actor.ADMIN, Retry.AFTER_FIX),
    ("Sender", "RATE_LIMIT", Actor.IEMK, Retry.NEXT_RUN),
    ("Sender", "NO_SNILS", Actor.MIS_DATA, Retry.NEVER),
    ("Sender", "SomethingNew", Actor.MIS_DATA, Retry.NEVER),
])
def test_a_fault_is_classified_by_its_subcode(code, subcode, actor, retry):
    found = errors.of_fault(code, subcode)
    assert (found.actor, found.retry) == (actor, retry)


def test_registry_answers_decide_by_the_least_hopeful_code():
    assert errors.of_registry_errors(["XDSRegistryBusy"]).retry is Retry.NEXT_RUN
    assert errors.of_registry_errors(["XDSRegistryBusy", "XDS.CDA.ValidationError"]).final
    assert errors.of_registry_errors(["XDSDuplicateUniqueIdInRegistry"]).actor is Actor.NOBODY
    assert errors.of_registry_errors(["NoSuchCode"]) is errors.IEMK_UNKNOWN
    assert errors.of_registry_errors([]) is errors.IEMK_UNKNOWN


def test_status_text_keeps_the_particular_reason():
    text = errors.FLK_XSD.status_text("cvc-complex-type.2.4.a")
    assert text == "Ошибка форматного контроля (XSD): cvc-complex-type.2.4.a"
    assert errors.FLK_XSD.status_text(None) == "Ошибка форматного контроля (XSD)"
    already = "Ошибка форматного контроля (XSD): x"
    assert errors.FLK_XSD.status_text(already) == already


def _package_exceptions() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(iemk_etl.__path__, "iemk_etl."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == info.name and issubclass(obj, BaseException):
                found.append(obj)
    return found


def test_every_exception_of_the_package_is_an_iemk_error():
    classes = _package_exceptions()
    assert len(classes) >= 15
    assert [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, errors.IemkError)] == []
    assert all(isinstance(c.default_kind, errors.ErrorKind) for c in classes)
