"""The integration section: the per-МО switch of the external system fed_iemk and its two procedures.

«Включить интеграцию» turns both procedures on (0/2 → 2/2), «Выключить интеграцию» turns them off. The
switch lives in the database, where the МИС's own triggers read it. The list of МО that have DAGs is
kept in a small JSON file as well, because a DAG file must not query a database when it is parsed.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # annotations only: the DAG file reads this module at parse time, cheaply
    import psycopg

from iemk_etl import errors
from iemk_etl.errors import ConfigurationError
from iemk_etl.settings import EXTERNAL_SYSTEM
from iemk_etl.store.mis import mo as mis_mo


class UnknownMoError(ConfigurationError, LookupError):
    default_kind = errors.UNKNOWN_MO


@dataclass(frozen=True)
class MoIntegration:
    oid: str
    code: str
    name: str
    enabled: int
    total: int

    @property
    def shown(self) -> str:
        return f"{self.enabled}/{self.total}"


# The DAGs of one МО, named by its short code (the one naming rule for the CLI and the Airflow glue).
EXPORT_DAG = "iemk_export__"
SIGN_AND_SEND_DAG = "iemk_sign_and_send__"
RECONCILE_DAG = "iemk_reconcile__"


def dag_id(prefix: str, mo_code: str) -> str:
    return f"{prefix}{mo_code}"


@dataclass(frozen=True)
class MoEntry:
    oid: str
    code: str
    name: str

    def dag_id(self, prefix: str = EXPORT_DAG) -> str:
        return dag_id(prefix, self.code)


def procedures_enabled(conn: psycopg.Connection, mo_oid: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE iemk.procedure_enabled(%s, p.code)), count(*)"
        " FROM iemk.integration_procedure p WHERE p.external_system = %s",
        (mo_oid, EXTERNAL_SYSTEM),
    ).fetchone()
    return (row[0], row[1]) if row else (0, 0)


def resolve_mo(conn: psycopg.Connection, mo: str) -> MoEntry:
    """An МО by its OID or its short code."""
    found = mis_mo.find(conn, mo)
    if found is None:
        raise UnknownMoError(f"МО [{mo}] не найдена в справочнике МО (mis.mo)")
    return MoEntry(found.oid, found.code, found.name)


def set_enabled(conn: psycopg.Connection, mo: str, enabled: bool) -> MoIntegration:
    entry = resolve_mo(conn, mo)
    with conn.transaction():
        conn.execute(
            "INSERT INTO iemk.mo_integration (mo_oid, procedure_code, enabled)"
            " SELECT %s, code, %s FROM iemk.integration_procedure WHERE external_system = %s"
            " ON CONFLICT (mo_oid, procedure_code) DO UPDATE SET enabled = EXCLUDED.enabled, changed_at = now()",
            (entry.oid, enabled, EXTERNAL_SYSTEM),
        )
    return status(conn, entry.oid)[0]


def status(conn: psycopg.Connection, mo: str | None = None) -> list[MoIntegration]:
    oid = resolve_mo(conn, mo).oid if mo else None
    return [MoIntegration(m.oid, m.code, m.name, *procedures_enabled(conn, m.oid)) for m in mis_mo.listed(conn, oid)]


def read_mo_config(path: Path) -> list[MoEntry]:
    """The МО that get DAGs; no database involved, so it is safe at DAG parse time."""
    if not path.is_file():
        return []
    return parse_mo_list(path.read_text(encoding="utf-8"), str(path))


def parse_mo_list(text: str, origin: str) -> list[MoEntry]:
    """An МО list as JSON: the file's shape ``{"mo": [{"oid", "code", "name"}, ...]}`` or just the list.

    ``origin`` names where the text came from, for the error; a malformed list is an error, never an empty one."""
    try:
        data = json.loads(text)
        items = data.get("mo", []) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise TypeError("ожидается список МО")
        return [MoEntry(oid=str(i["oid"]), code=str(i["code"]), name=str(i.get("name") or i["code"]))
                for i in items]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigurationError(f"список МО {origin}: ожидается JSON {{\"mo\": [{{\"oid\", \"code\", "
                                 f"\"name\"}}]}}: {exc}") from None


def integrated_mo(conn: psycopg.Connection) -> list[MoEntry]:
    """The МО the integration section has ever been switched for (on now or off since): they keep their DAGs, whose
    check_integration task skips a run while the switch is off, so a switched-off МО's history stays visible."""
    return [MoEntry(m.oid, m.code, m.name) for m in mis_mo.integrated(conn)]


def remember_mo(path: Path, entry: MoEntry) -> None:
    """Add (or refresh) an МО in the DAG configuration file, atomically."""
    entries = {e.oid: e for e in read_mo_config(path)}
    entries[entry.oid] = entry
    payload = {"external_system": EXTERNAL_SYSTEM,
               "mo": [asdict(e) for e in sorted(entries.values(), key=lambda e: e.code)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mo-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(payload, f, ensure_ascii=False, indent=2)
    os.replace(tmp, path)
