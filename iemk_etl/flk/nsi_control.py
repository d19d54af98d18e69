"""НСИ control: every coded element of a СЭМД checked against the federal dictionaries (ФНСИ), after the Schematron.

ИЭМК checks vocabulary after the packs (XDSDictionaryValidationError): the packs check structure, not whether a code
exists. Here every element with ``@code`` and a ``@codeSystem`` we hold a dictionary for is checked:

- NSI-VERSION — ``@codeSystemVersion`` is a version we do not hold (so not one ФНСИ published, as far as we know);
- NSI-CODE — the code is absent from that version (or, with no version given, from the newest held);
- NSI-EXPIRED — the code's row ends (its dictionary's end-of-validity column, ``nsi.model.END_DATE_COLUMNS``) before
  the document's ``effectiveTime``;
- NSI-NAME — ``@displayName`` differs from the dictionary's name for the code (exact comparison, as ИЭМК does);
- SNILS-CHECK — an ``id`` with root 1.2.643.100.3 (СНИЛС) whose check digits are wrong;
- OGRN-CHECK — an ``identity:Ogrn`` (13 digits) or ``identity:Ogrnip`` (15) whose control digit is wrong;
- OMS-CHECK — an ОМС policy of the единый образец (type 3 of 1.2.643.5.1.13.13.11.1035 in ``identity:Number``, or a
  16-digit ``id/@extension`` under the СМО registry root 1.2.643.5.1.13.2.1.1.635) whose 16th digit is wrong.

One finding per bad element (the first rule that fails, in the order above). The dictionaries come from a
``DictionarySource``: the pipeline passes the database's (``iemk_etl.pipeline.nsi.StoreSource``), the CLI and the
emulator may pass a folder of ФНСИ files (``FolderSource``). A dictionary not held is said once per OID and process
(a plain warning, as missing packs are), or, with IEMK_REQUIRE_NSI=1, is a finding of the document.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Protocol

from lxml import etree

from iemk_etl.nsi import files
from iemk_etl.nsi.fnsi import version_key
from iemk_etl.nsi.model import Dictionary
from iemk_etl.protocol import ogrn, oms_policy, snils
from iemk_etl.semd.codes import POLICY_TYPES, SMO_OID
from iemk_etl.semd.header import NS, RU_NS, SNILS_ROOT

log = logging.getLogger(__name__)

NSI_CODE, NSI_NAME, NSI_VERSION, SNILS_CHECK = "NSI-CODE", "NSI-NAME", "NSI-VERSION", "SNILS-CHECK"
NSI_EXPIRED, OGRN_CHECK, OMS_CHECK = "NSI-EXPIRED", "OGRN-CHECK", "OMS-CHECK"
IDENTIFIER_RULES = frozenset({SNILS_CHECK, OGRN_CHECK, OMS_CHECK})
_IDENTITY = RU_NS["identity"]
# 1.2.643.5.1.13.13.11.1035 «Виды полиса ОМС»: 3 is the единый образец, the only kind whose number has a check digit.
_UNIFIED_POLICY = "3"
NSI_MISSING = "IEMK_REQUIRE_NSI"
# The OID arcs of ФНСИ's dictionaries (and the legacy ones ИЭМК still names): a codeSystem outside them (HL7's own,
# a МИС's local table) is not a federal dictionary and is not ours to check or warn about.
FNSI_ARCS = ("1.2.643.5.1.13.13.11.", "1.2.643.5.1.13.13.99.2.", "1.2.643.5.1.13.2.1.1.")

_warned: set[str] = set()
_warned_lock = threading.Lock()


class DictionarySource(Protocol):
    """Where НСИ control reads dictionaries: the versions held of an OID and one version's code → name."""

    def versions(self, oid: str) -> set[str]:
        """The versions held of ``oid``; empty when the dictionary is not held."""
        ...

    def names(self, oid: str, version: str) -> Mapping[str, str | None]:
        """Code → display name of a held version."""
        ...

    def end_dates(self, oid: str, version: str) -> Mapping[str, dt.date]:
        """Code → the date its row stops being valid, where the dictionary says so."""
        ...

    def is_empty(self) -> bool:
        """True when no dictionary at all is held (an empty database, an empty folder)."""
        ...


class DictionarySet:
    """Dictionaries in memory: the folder source and the tests' source."""

    def __init__(self, dictionaries: Iterable[Dictionary]) -> None:
        self._by_key: dict[tuple[str, str], Dictionary] = {(d.oid, d.version): d for d in dictionaries}
        self._names: dict[tuple[str, str], dict[str, str | None]] = {}
        self._ends: dict[tuple[str, str], dict[str, dt.date]] = {}

    def versions(self, oid: str) -> set[str]:
        return {v for o, v in self._by_key if o == oid}

    def names(self, oid: str, version: str) -> Mapping[str, str | None]:
        key = (oid, version)
        if key not in self._names:
            self._names[key] = self._by_key[key].names()
        return self._names[key]

    def end_dates(self, oid: str, version: str) -> Mapping[str, dt.date]:
        key = (oid, version)
        if key not in self._ends:
            self._ends[key] = self._by_key[key].end_dates()
        return self._ends[key]

    def is_empty(self) -> bool:
        return not self._by_key


class FolderSource:
    """A folder of ФНСИ files (``iemk_etl.nsi.files``: JSON answers or CSV exports), read on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @cached_property
    def _loaded(self) -> DictionarySet:
        return DictionarySet(d for d, _ in files.read(self.folder))

    def versions(self, oid: str) -> set[str]:
        return self._loaded.versions(oid)

    def names(self, oid: str, version: str) -> Mapping[str, str | None]:
        return self._loaded.names(oid, version)

    def end_dates(self, oid: str, version: str) -> Mapping[str, dt.date]:
        return self._loaded.end_dates(oid, version)

    def is_empty(self) -> bool:
        return self._loaded.is_empty()


def _warn_once(key: str, message: str) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message)


def element_path(el: etree._Element) -> str:
    """The element's path as the Schematron findings give it: /ClinicalDocument[1]/component[1]/..."""
    steps = []
    node: etree._Element | None = el
    while node is not None:
        parent = node.getparent()
        same = [s for s in parent if s.tag == node.tag] if parent is not None else [node]
        steps.append(f"{etree.QName(node).localname}[{same.index(node) + 1}]")
        node = parent
    return "/" + "/".join(reversed(steps))


def _name(el: etree._Element) -> str:
    return etree.QName(el).localname


def _newest(versions: set[str]) -> str:
    return max(versions, key=version_key)


def document_date(root: etree._Element) -> dt.date | None:
    """The date of the document's ``effectiveTime`` (YYYYMMDD…), None when absent or unreadable."""
    found = root.find(f"{{{NS}}}effectiveTime")
    value = (found.get("value") or "") if found is not None else ""
    try:
        return dt.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _expired(source: DictionarySource, oid: str, version: str, code: str, on: dt.date | None) -> dt.date | None:
    """The end date of the code's row when it ended before ``on``; a source without end dates ends nothing."""
    ends = getattr(source, "end_dates", None)
    if on is None or ends is None:
        return None
    end = ends(oid, version).get(code)
    return end if end is not None and end < on else None


def check_element(el: etree._Element, source: DictionarySource, held: set[str],
                  on: dt.date | None = None) -> tuple[str, str] | None:
    """(rule, message) of the first check a coded element fails, None when it passes. ``held``: its OID's versions;
    ``on``: the document's date, against which a row's end of validity is compared."""
    code, oid = el.get("code", ""), el.get("codeSystem", "")
    given = el.get("codeSystemVersion")
    what = f"Элемент {_name(el)}: код [{code}]"
    if given is not None and given not in held:
        known = ", ".join(sorted(held, key=version_key))
        return NSI_VERSION, (f"{what}, справочник OID [{oid}]: версия [{given}] неизвестна (известные версии: "
                             f"{known})")
    version = given if given is not None else _newest(held)
    names = source.names(oid, version)
    if code not in names:
        return NSI_CODE, f"{what} отсутствует в справочнике OID [{oid}] версии [{version}]"
    ended = _expired(source, oid, version, code, on)
    if ended is not None:
        return NSI_EXPIRED, (f"{what}, справочник OID [{oid}] версии [{version}]: запись недействительна с "
                             f"{ended:%d.%m.%Y} (дата документа {on:%d.%m.%Y})")
    expected, shown = names[code], el.get("displayName")
    if shown is not None and expected is not None and shown != expected:
        return NSI_NAME, (f"{what}, справочник OID [{oid}] версии [{version}]: наименование [{shown}] не "
                          f"совпадает с наименованием в справочнике [{expected}]")
    return None


def check_snils(root: etree._Element) -> list[tuple[str, str, str]]:
    """(rule, message, path) of every СНИЛС id (patient, authors, anyone) with wrong check digits."""
    found = []
    for el in root.iter(f"{{{NS}}}id"):
        number = el.get("extension")
        if el.get("root") != SNILS_ROOT or number is None or snils.is_valid(number):
            continue
        owner = el.getparent()
        who = _name(owner) if owner is not None else "id"
        found.append((SNILS_CHECK, f"Элемент {who}/id: СНИЛС [{number}] не валидно контрольное число "
                                   f"(id/@root [{SNILS_ROOT}])", element_path(el)))
    return found


def check_ogrn(root: etree._Element) -> list[tuple[str, str, str]]:
    """(rule, message, path) of every ``identity:Ogrn``/``identity:Ogrnip`` with a wrong length or control digit."""
    found = []
    for tag, what, length in (("Ogrn", "ОГРН", 13), ("Ogrnip", "ОГРНИП", 15)):
        for el in root.iter(f"{{{_IDENTITY}}}{tag}"):
            number = (el.text or "").strip()
            if not number or ogrn.is_valid(number, length=length):
                continue        # an empty one is the Schematron's (Core06-1), not a check digit's
            found.append((OGRN_CHECK, f"Элемент identity:{tag}: {what} [{number}] не валидно контрольное число "
                                      f"(ожидается {length} цифр с контрольной цифрой)", element_path(el)))
    return found


def _policy_numbers(root: etree._Element) -> Iterable[tuple[etree._Element, str]]:
    """(element, number) of every ОМС policy of the единый образец the document names."""
    for holder in root.iter(f"{{{_IDENTITY}}}InsurancePolicy", f"{{{_IDENTITY}}}DocInfo"):
        kind = holder.find(f"{{{_IDENTITY}}}InsurancePolicyType")
        number = holder.find(f"{{{_IDENTITY}}}Number")
        if (kind is not None and number is not None and kind.get("code") == _UNIFIED_POLICY
                and kind.get("codeSystem") == POLICY_TYPES.oid and number.text):
            yield number, number.text.strip()
    # The legacy guides name the policy only as an id under the СМО registry: 16 digits there is a ЕНП (the old
    # policies' series and number and the temporary certificate's 9 digits have no check digit defined).
    for el in root.iter(f"{{{NS}}}id"):
        extension = el.get("extension") or ""
        if el.get("root") == SMO_OID and len(extension) == 16 and extension.isdigit():
            yield el, extension


def check_oms_policy(root: etree._Element) -> list[tuple[str, str, str]]:
    """(rule, message, path) of every ОМС policy of the единый образец whose 16th (control) digit is wrong."""
    return [(OMS_CHECK, f"Элемент {_name(el)}: номер полиса ОМС единого образца [{number}] не валидно контрольное "
                        "число (ожидается 16 цифр, 16-я — контрольная)", element_path(el))
            for el, number in _policy_numbers(root) if not oms_policy.is_valid(number)]


def check_identifiers(root: etree._Element) -> list[tuple[str, str, str]]:
    """СНИЛС, ОГРН/ОГРНИП and ОМС policy check digits: they need no dictionary, so they always run."""
    return check_snils(root) + check_ogrn(root) + check_oms_policy(root)


def check(root: etree._Element, source: DictionarySource, *,
          require: bool = False) -> list[tuple[str, str, str]]:
    """(rule, message, path) of every bad coded element and СНИЛС, plus — with ``require`` — one per OID not held.

    Without ``require`` an OID not held is warned about once per process and its elements pass."""
    if source.is_empty() and not require:
        _warn_once("", "No НСИ dictionaries are held (iemk-etl nsi load|sync): НСИ control of codes is SKIPPED, "
                   "only СНИЛС, ОГРН and ОМС policy check digits are verified")
    found: list[tuple[str, str, str]] = []
    missing: dict[str, str] = {}
    held: dict[str, set[str]] = {}
    on = document_date(root)
    for el in root.iter():
        if not isinstance(el.tag, str) or el.get("code") is None:
            continue
        oid = el.get("codeSystem") or ""
        if not oid.startswith(FNSI_ARCS):
            continue
        if oid not in held:
            held[oid] = source.versions(oid)
        if not held[oid]:
            missing.setdefault(oid, element_path(el))
            continue
        bad = check_element(el, source, held[oid], on)
        if bad:
            found.append((*bad, element_path(el)))
    for oid, where in missing.items():
        if require:
            found.append((NSI_MISSING, f"Справочник OID [{oid}] не загружен (iemk-etl nsi load|sync); "
                                       "IEMK_REQUIRE_NSI=1 запрещает передачу без контроля НСИ", where))
        elif not source.is_empty():
            _warn_once(oid, f"НСИ dictionary {oid} is not held (iemk-etl nsi load|sync): its codes are NOT "
                       "checked. Set IEMK_REQUIRE_NSI=1 to refuse such documents instead.")
    return found + check_identifiers(root)
