"""НСИ dictionaries in iemk.nsi_dictionary / iemk.nsi_row: every statement on them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from iemk_etl.nsi import model
from iemk_etl.nsi.model import Column, Dictionary


@dataclass(frozen=True)
class Held:
    """A version held in the database (the passport without the rows)."""

    oid: str
    version: str
    name: str
    rows_count: int
    content_hash: str
    source: str
    loaded_at: object


def save(conn: psycopg.Connection, d: Dictionary, source: str) -> bool:
    """Store one version; replace its rows when its content changed. False when the same content is held."""
    with conn.transaction():
        row = conn.execute("SELECT content_hash FROM iemk.nsi_dictionary WHERE oid = %s AND version = %s"
                           " FOR UPDATE", (d.oid, d.version)).fetchone()
        digest = d.content_hash
        if row is not None and row[0] == digest:
            return False
        conn.execute("DELETE FROM iemk.nsi_dictionary WHERE oid = %s AND version = %s", (d.oid, d.version))
        conn.execute(
            "INSERT INTO iemk.nsi_dictionary (oid, version, name, columns, code_column, name_column, publish_date,"
            " rows_count, content_hash, source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (d.oid, d.version, d.name, Jsonb([c.as_json() for c in d.columns]), d.code_column, d.name_column,
             d.publish_date, len(d.rows), digest, source))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO iemk.nsi_row (oid, version, code, display_name, other) VALUES (%s, %s, %s, %s, %s)",
                [(d.oid, d.version, d.code(r), d.display_name(r), Jsonb(d.other(r))) for r in d.rows])
    return True


def held(conn: psycopg.Connection, oid: str | None = None) -> list[Held]:
    """The versions held, of one OID or of all, by OID and loading order."""
    rows = conn.execute(
        "SELECT oid, version, name, rows_count, content_hash, source, loaded_at FROM iemk.nsi_dictionary"
        " WHERE %(oid)s::text IS NULL OR oid = %(oid)s ORDER BY oid, loaded_at, version", {"oid": oid}).fetchall()
    return [Held(*r) for r in rows]


def versions(conn: psycopg.Connection, oid: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT version FROM iemk.nsi_dictionary WHERE oid = %s", (oid,))}


def names(conn: psycopg.Connection, oid: str, version: str) -> dict[str, str | None]:
    """Code → display name of one version (НСИ control reads only these two columns)."""
    return dict(conn.execute("SELECT code, display_name FROM iemk.nsi_row WHERE oid = %s AND version = %s",
                             (oid, version)).fetchall())


def end_dates(conn: psycopg.Connection, oid: str, version: str) -> dict[str, dt.date]:
    """Code → end of validity of the rows of a held version whose dictionary gives one (``model.END_DATE_COLUMNS``)."""
    rows = conn.execute("SELECT code, other FROM iemk.nsi_row WHERE oid = %s AND version = %s", (oid, version))
    return model.end_dates((code, other or {}) for code, other in rows)


def any_held(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM iemk.nsi_dictionary)").fetchone()[0]


def load(conn: psycopg.Connection, oid: str, version: str) -> Dictionary | None:
    head = conn.execute(
        "SELECT name, columns, code_column, name_column, publish_date FROM iemk.nsi_dictionary"
        " WHERE oid = %s AND version = %s", (oid, version)).fetchone()
    if head is None:
        return None
    name, columns, code_column, name_column, published = head
    rows = []
    for code, display, other in conn.execute(
            "SELECT code, display_name, other FROM iemk.nsi_row WHERE oid = %s AND version = %s ORDER BY code",
            (oid, version)):
        row = {code_column: code, **other}
        if name_column:
            row[name_column] = display
        rows.append(row)
    cols = tuple(Column(c["field"], c.get("dataType", "VARCHAR"), c.get("alias", "")) for c in columns)
    return Dictionary(oid, version, name, cols, code_column, name_column, tuple(rows), published)


def load_all(conn: psycopg.Connection) -> list[Dictionary]:
    """Every version held, rows included: the НСИ control's view (the dictionaries it needs are small)."""
    keys = conn.execute("SELECT oid, version FROM iemk.nsi_dictionary ORDER BY oid, version").fetchall()
    return [d for oid, version in keys if (d := load(conn, oid, version)) is not None]
