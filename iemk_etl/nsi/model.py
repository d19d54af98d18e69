"""One НСИ dictionary version as ФНСИ describes it: the passport (OID, name, version, columns, keys) and the rows.

The shapes are ФНСИ's REST answers (docs/nsi.md says where they were confirmed): a passport names its columns in
``fields`` and marks the code column with a ``PRIMARY`` key and the display-name column with a ``VALUE`` key; a data
page is ``{"total": N, "list": [[{"column": ..., "value": ...}, ...], ...]}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from iemk_etl import errors
from iemk_etl.errors import ConfigurationError

# When a passport marks no keys (a CSV without one): the usual ФНСИ column names, most specific first.
CODE_COLUMNS = ("ID", "CODE", "RECID", "S_CODE", "MKB_CODE", "UNIQ_ID")
NAME_COLUMNS = ("NAME", "FULLNAME", "MKB_NAME", "S_NAME", "DISPLAY_NAME", "NAME_FULL", "SHORTNAME")
# Where the code a CDA document writes in @code is not the passport's PRIMARY key (a numeric record id there).
CDA_CODE_COLUMNS = {
    "1.2.643.5.1.13.13.11.1005": "MKB_CODE",    # МКБ-10: documents carry the МКБ code, not the record ID
    "1.2.643.5.1.13.13.11.1070": "S_CODE",      # Номенклатура медицинских услуг: the service code (A05.10.006)
    "1.2.643.5.1.13.13.99.2.197": "CODE",       # Секции CDA документов: documents carry the section code (SUR)
    "1.2.643.5.1.13.13.99.2.285": "CODE",       # Уровень конфиденциальности: documents carry N / R / V
}
# Where the CDA displayName is not the passport's VALUE column (or the passport marks none).
CDA_NAME_COLUMNS = {
    "1.2.643.5.1.13.13.11.1358": "SHORTNAME",   # Единицы измерения: the guides' examples write the short name (г/л)
}
# The columns in which ФНСИ gives a row's end of validity, as the held passports name them: 1.2.643.5.1.13.13.11.1070
# v2.10 «DATEOUT» (Дата упразднения), 1.2.643.5.1.13.13.11.1002 v9.6 «DATA_END» (Дата окончания действия записи);
# the other spellings are ones ФНСИ dictionaries also use (docs/nsi.md).
END_DATE_COLUMNS = ("DATEOUT", "DATA_END", "DATE_END", "DATEEND", "END_DATE", "ENDDATE")
_DATE_FORMATS = ("%d.%m.%Y", "%Y-%m-%d")
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


class NsiFileError(ConfigurationError, ValueError):
    """A dictionary file or answer cannot be read as ФНСИ writes it."""

    default_kind = errors.NSI_SOURCE


@dataclass(frozen=True)
class Column:
    field: str
    data_type: str = "VARCHAR"
    alias: str = ""

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "dataType": self.data_type, "alias": self.alias}


@dataclass(frozen=True)
class Dictionary:
    oid: str
    version: str
    name: str
    columns: tuple[Column, ...]
    code_column: str
    name_column: str | None
    rows: tuple[Mapping[str, str | None], ...] = field(repr=False)
    publish_date: str | None = None

    def code(self, row: Mapping[str, str | None]) -> str:
        return str(row.get(self.code_column) or "")

    def display_name(self, row: Mapping[str, str | None]) -> str | None:
        return row.get(self.name_column) if self.name_column else None

    def other(self, row: Mapping[str, str | None]) -> dict[str, str | None]:
        return {k: v for k, v in row.items() if k not in (self.code_column, self.name_column)}

    def names(self) -> dict[str, str | None]:
        """Code → display name."""
        return {self.code(r): self.display_name(r) for r in self.rows}

    def end_dates(self) -> dict[str, dt.date]:
        """Code → the date its row stops being valid, for rows whose dictionary gives one."""
        return end_dates((self.code(r), r) for r in self.rows)

    @property
    def content_hash(self) -> str:
        # Canonical: the same columns and rows in any order give the same hash, so a reload can tell "unchanged".
        rows = sorted((dict(sorted(r.items())) for r in self.rows), key=lambda r: str(r.get(self.code_column)))
        body = {"columns": [c.as_json() for c in self.columns], "code": self.code_column, "name": self.name_column,
                "rows": rows}
        return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def parse_passport(doc: Mapping[str, object]) -> tuple[str, str, str, tuple[Column, ...], str | None, str | None,
                                                      str | None]:
    """(oid, version, name, columns, code column, name column, publish date) of a ФНСИ passport answer."""
    check_result(doc, "passport")
    oid, version = _text(doc.get("oid")), _text(doc.get("version"))
    if not oid or not _OID.match(oid) or not version:
        raise NsiFileError("паспорт справочника ФНСИ без OID или версии")
    fields = doc.get("fields") or []
    columns = tuple(Column(str(f["field"]), str(f.get("dataType") or "VARCHAR"), str(f.get("alias") or ""))
                    for f in fields if isinstance(f, Mapping) and f.get("field"))
    keys = {str(k.get("type")): str(k.get("field")) for k in (doc.get("keys") or []) if isinstance(k, Mapping)}
    name = _text(doc.get("fullName")) or _text(doc.get("shortName")) or ""
    return oid, version, name, columns, keys.get("PRIMARY"), keys.get("VALUE"), _text(doc.get("publishDate"))


def other_oids(doc: Mapping[str, object]) -> set[str]:
    """The OIDs a passport lists in ``codes``: a dictionary may be cited by an older OID of its own (1076 is
    99.2.795's other OID), and ФНСИ answers under either."""
    return {str(c.get("value")) for c in (doc.get("codes") or []) if isinstance(c, Mapping) and c.get("value")}


def check_result(doc: Mapping[str, object], what: str) -> None:
    if doc.get("result", "OK") != "OK":
        raise NsiFileError(f"ФНСИ ответила на запрос {what} ошибкой: {doc.get('resultCode')} {doc.get('resultText')}")


def parse_rows(doc: Mapping[str, object]) -> list[dict[str, str | None]]:
    """The rows of a ФНСИ data answer (one page)."""
    check_result(doc, "data")
    rows = []
    for item in doc.get("list") or []:
        if not isinstance(item, list):
            raise NsiFileError("строка данных ФНСИ не является списком колонок")
        rows.append({str(c["column"]): _text(c.get("value")) for c in item if isinstance(c, Mapping)})
    return rows


def pick_column(given: str | None, columns: Iterable[str], candidates: tuple[str, ...]) -> str | None:
    present = {c.upper(): c for c in columns}
    if given and given.upper() in present:
        return present[given.upper()]
    return next((present[c] for c in candidates if c in present), None)


def build(oid: str, version: str, name: str, columns: tuple[Column, ...], code_column: str | None,
          name_column: str | None, rows: list[dict[str, str | None]], publish_date: str | None = None) -> Dictionary:
    """A dictionary from a passport and its rows; the code and name columns by the passport's keys or, lacking
    them, by the usual ФНСИ names. Refuses duplicate codes: the code is the row's identity."""
    names = [c.field for c in columns] or sorted({k for r in rows for k in r})
    if not columns:
        columns = tuple(Column(n) for n in names)
    code = pick_column(CDA_CODE_COLUMNS.get(oid) or code_column, names, CODE_COLUMNS)
    if code is None:
        raise NsiFileError(f"справочник {oid} v{version}: не найдена колонка кода (ключ PRIMARY или {CODE_COLUMNS})")
    display = pick_column(CDA_NAME_COLUMNS.get(oid) or name_column, names, NAME_COLUMNS)
    # A row without a code cannot be cited; a repeated code (a few ФНСИ dictionaries repeat a CDA code on an
    # outdated row) keeps its first row, as ФНСИ lists the current rows first.
    kept: dict[str, dict[str, str | None]] = {}
    for r in rows:
        c = str(r.get(code) or "")
        if c and c not in kept:
            kept[c] = r
    return Dictionary(oid, version, name, columns, code, display, tuple(kept.values()), publish_date)


def parse_date(value: str | None) -> dt.date | None:
    """A ФНСИ date: «01.09.2023», «2023-09-01», or either with a time after it; None when empty or unreadable."""
    text = (value or "").strip().split(" ")[0].split("T")[0]
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def end_dates(rows: Iterable[tuple[str, Mapping[str, str | None]]]) -> dict[str, dt.date]:
    """Code → end of validity over (code, row columns) pairs: the first end-date column a row fills in."""
    found: dict[str, dt.date] = {}
    for code, row in rows:
        upper = {k.upper(): v for k, v in row.items()}
        ends = (parse_date(upper.get(c)) for c in END_DATE_COLUMNS)
        end = next((e for e in ends if e is not None), None)
        if end is not None:
            found[code] = end
    return found
