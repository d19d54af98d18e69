"""Dictionary files as ФНСИ gives them out, read into ``Dictionary``.

- JSON, the REST API's own answers saved to files (the layout public ФНСИ mirrors use): ``<OID>_<version>_passport``
  (the ``/port/rest/passport`` answer) and one or more ``<OID>_<version>_part<N>`` or ``<OID>_<version>_data``
  (``/port/rest/data`` pages), with or without ``.json``. A single JSON file may also hold both: a passport object
  with the rows under ``"list"``.
- CSV, as the portal's «Скачать» exports a version: a header row of column names, ``;`` or ``,`` separated, UTF-8
  (a BOM is allowed). The OID and version come from the file name ``<OID>_<version>[...].csv``; the name and the
  keys from a passport file of the same OID and version beside it, else the usual column names (ID, NAME...).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from iemk_etl.nsi.model import Column, Dictionary, NsiFileError, build, other_oids, parse_passport, parse_rows

_NAME = re.compile(r"^(?P<oid>[0-2](?:\.\d+)+)_(?P<version>\d+(?:\.\d+)*)"
                   r"(?:_(?P<part>[A-Za-z]+\d*))?(?:\.(?P<ext>json|csv))?$", re.IGNORECASE)
MAX_FILE_BYTES = 256 * 1024 * 1024   # a dictionary export larger than this is not a dictionary we use


def _read_json(path: Path) -> dict:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise NsiFileError(f"{path}: файл больше {MAX_FILE_BYTES} байт")
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NsiFileError(f"{path}: не JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise NsiFileError(f"{path}: ожидался объект JSON")
    return doc


def _group(paths: list[Path]) -> dict[tuple[str, str], dict[str, list[Path]]]:
    groups: dict[tuple[str, str], dict[str, list[Path]]] = {}
    for path in sorted(paths):
        m = _NAME.match(path.name)
        if not m:
            continue
        part = (m["part"] or "").lower()
        kind = "csv" if (m["ext"] or "").lower() == "csv" else "passport" if part == "passport" else "data"
        groups.setdefault((m["oid"], m["version"]), {}).setdefault(kind, []).append(path)
    return groups


def _from_json(oid: str, version: str, passport: Path | None, data: list[Path]) -> Dictionary:
    rows: list[dict[str, str | None]] = []
    head: dict = _read_json(passport) if passport else {}
    for path in data:
        doc = _read_json(path)
        if "fields" in doc and not head:   # a combined file: passport and rows together
            head = doc
        rows.extend(parse_rows(doc))
    if not head:
        raise NsiFileError(f"справочник {oid} v{version}: нет паспорта ({oid}_{version}_passport)")
    p_oid, p_version, name, columns, code, display, published = parse_passport(head)
    if oid in other_oids(head):
        p_oid = oid      # the dictionary under the OID the file names, which documents cite
    if (p_oid, p_version) != (oid, version):
        raise NsiFileError(f"паспорт {p_oid} v{p_version} лежит под именем {oid}_{version}")
    return build(oid, version, name, columns, code, display, rows, published)


def _from_csv(oid: str, version: str, path: Path, passport: Path | None) -> Dictionary:
    text = path.read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=";,\t")
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    rows = [{k.strip(): (v if v != "" else None) for k, v in r.items() if k} for r in reader]
    columns = tuple(Column(c.strip()) for c in reader.fieldnames or ())
    name, code, display, published = "", None, None, None
    if passport:
        _, _, name, p_columns, code, display, published = parse_passport(_read_json(passport))
        columns = p_columns or columns
    return build(oid, version, name, columns, code, display, rows, published)


def read(target: Path) -> Iterator[tuple[Dictionary, str]]:
    """Every dictionary version in a file or a folder (not recursive), with the file it came from."""
    paths = sorted(target.iterdir()) if target.is_dir() else [target]
    m = _NAME.match(target.name) if target.is_file() else None
    if m:   # one file of a version: its passport and pages lie beside it
        prefix = f"{m['oid']}_{m['version']}"
        paths = [p for p in sorted(target.parent.iterdir()) if p == target or p.name.startswith(prefix + "_")
                 or p.name.startswith(prefix + ".")]
    groups = _group([p for p in paths if p.is_file()])
    if not groups and target.is_file():
        doc = _read_json(target)      # a combined file under any name
        p_oid, p_version, *_ = parse_passport(doc)
        groups = {(p_oid, p_version): {"data": [target]}}
    for (oid, version), kinds in sorted(groups.items()):
        passport = (kinds.get("passport") or [None])[0]
        if kinds.get("csv"):
            yield _from_csv(oid, version, kinds["csv"][0], passport), str(kinds["csv"][0])
        else:
            yield _from_json(oid, version, passport, kinds.get("data", [])), str(passport or kinds["data"][0])
