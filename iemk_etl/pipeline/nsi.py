"""НСИ dictionaries into the database: from files (``iemk-etl nsi load``) or from ФНСИ (``iemk-etl nsi sync``).

The OIDs kept by default are the dictionaries the builders cite (``semd.codes``); for each, the sync asks ФНСИ for
its versions and downloads the newest one and the one our documents cite, each only when not held yet. A version
never changes in ФНСИ, so a held version is never downloaded again: a second sync asks only for the version lists.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from iemk_etl.nsi import files
from iemk_etl.nsi.fnsi import FnsiClient, version_key
from iemk_etl.semd import codes
from iemk_etl.store import nsi as store

log = logging.getLogger(__name__)


class StoreSource:
    """НСИ control's dictionary source over the database (``flk.nsi_control.DictionarySource``): a version's rows
    are read once, on first use, and kept for the run."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn
        self._versions: dict[str, set[str]] = {}
        self._names: dict[tuple[str, str], dict[str, str | None]] = {}
        self._ends: dict[tuple[str, str], dict[str, dt.date]] = {}
        self._empty: bool | None = None

    def versions(self, oid: str) -> set[str]:
        if oid not in self._versions:
            self._versions[oid] = store.versions(self._conn, oid)
        return self._versions[oid]

    def names(self, oid: str, version: str) -> dict[str, str | None]:
        key = (oid, version)
        if key not in self._names:
            self._names[key] = store.names(self._conn, oid, version)
        return self._names[key]

    def end_dates(self, oid: str, version: str) -> dict[str, dt.date]:
        key = (oid, version)
        if key not in self._ends:
            self._ends[key] = store.end_dates(self._conn, oid, version)
        return self._ends[key]

    def is_empty(self) -> bool:
        if self._empty is None:
            self._empty = not store.any_held(self._conn)
        return self._empty


def cited_versions() -> dict[str, str]:
    """OID → the version the builders cite, of every dictionary in ``semd.codes``."""
    tables = [v for v in vars(codes).values() if isinstance(v, codes.CodeTable)]
    return {t.oid: t.version for t in sorted(tables, key=lambda t: t.oid)}


@dataclass
class LoadResult:
    loaded: list[tuple[str, str]] = field(default_factory=list)      # (oid, version) stored or replaced
    unchanged: list[tuple[str, str]] = field(default_factory=list)   # the same content was held


def load_path(conn: psycopg.Connection, path: Path) -> LoadResult:
    """Every dictionary version in a file or a folder, stored; a version held with the same content stays."""
    result = LoadResult()
    for dictionary, source in files.read(path):
        key = (dictionary.oid, dictionary.version)
        (result.loaded if store.save(conn, dictionary, source) else result.unchanged).append(key)
    return result


@dataclass
class SyncResult(LoadResult):
    missing: dict[str, str] = field(default_factory=dict)     # OID → why nothing came (no such dictionary, version)


def sync(conn: psycopg.Connection, client: FnsiClient, oids: list[str] | None = None) -> SyncResult:
    """Download from ФНСИ the newest and the cited version of each OID that are not held yet."""
    cited = cited_versions()
    result = SyncResult()
    for oid in oids or list(cited):
        listed = {v.version for v in client.versions(oid)}
        if not listed:
            result.missing[oid] = "ФНСИ не знает версий справочника"
            continue
        wanted = {max(listed, key=version_key)}
        if oid in cited:
            if cited[oid] in listed:
                wanted.add(cited[oid])
            else:
                result.missing[oid] = f"нет версии {cited[oid]}, на которую ссылаются документы"
        held = store.versions(conn, oid)
        for version in sorted(wanted - held, key=version_key):
            dictionary = client.dictionary(oid, version)
            store.save(conn, dictionary, f"ФНСИ {oid} v{version}")
            result.loaded.append((oid, version))
        result.unchanged.extend((oid, v) for v in sorted(wanted & held, key=version_key))
    return result
