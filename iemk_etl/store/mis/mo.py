"""The МО directory of the МИС (mis.mo)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # annotations only: the DAG file reads this module at parse time, cheaply
    import psycopg


@dataclass(frozen=True)
class Mo:
    oid: str
    code: str
    name: str


def find(conn: psycopg.Connection, key: str) -> Mo | None:
    """An МО by its OID or its short code."""
    row = conn.execute("SELECT oid, code, name FROM mis.mo WHERE oid = %s OR code = %s", (key, key)).fetchone()
    return Mo(*row) if row else None


def listed(conn: psycopg.Connection, oid: str | None = None) -> list[Mo]:
    """Every МО by code, or only the one with this OID."""
    rows = conn.execute("SELECT oid, code, name FROM mis.mo WHERE %s::text IS NULL OR oid = %s ORDER BY code",
                        (oid, oid)).fetchall()
    return [Mo(*r) for r in rows]


def integrated(conn: psycopg.Connection) -> list[Mo]:
    """The МО the integration section has ever been switched for (iemk.mo_integration), by code."""
    rows = conn.execute(
        "SELECT m.oid, m.code, m.name FROM mis.mo m"
        " WHERE EXISTS (SELECT 1 FROM iemk.mo_integration i WHERE i.mo_oid = m.oid) ORDER BY m.code").fetchall()
    return [Mo(*r) for r in rows]
