"""Database access: the DSN in force, connections, and the schema migrations the project ships."""

from __future__ import annotations

import logging
from importlib import resources

import psycopg

from iemk_etl.settings import Settings

log = logging.getLogger(__name__)

# Any fixed number works; it only has to be the same for every process that migrates.
_MIGRATION_LOCK = 7_150_520


class NoDatabaseError(RuntimeError):
    pass


def resolve_dsn(settings: Settings, *, start_embedded: bool = True) -> str:
    """IEMK_SOURCE_DSN when set, else the embedded server under IEMK_HOME (started on demand)."""
    if settings.source_dsn:
        return settings.source_dsn
    if not start_embedded:
        raise NoDatabaseError("IEMK_SOURCE_DSN is not set and the embedded PostgreSQL is not allowed here")
    from iemk_etl.store import embedded_pg

    return embedded_pg.start(settings.home)


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection:
    # A bounded connect timeout: a task must fail visibly rather than hang on an unreachable server.
    return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=15, application_name="iemk-etl")


def migrations() -> list[tuple[str, str]]:
    files = sorted(
        (f for f in resources.files("iemk_etl.store.migrations").iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def migrate(dsn: str) -> list[str]:
    """Apply the migrations not yet applied; return their names. Safe to run concurrently."""
    applied_now: list[str] = []
    with connect(dsn) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS iemk")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS iemk.schema_migration ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT name FROM iemk.schema_migration")}
        for name, sql in migrations():
            if name in done:
                continue
            log.info("applying migration %s", name)
            conn.execute(sql)  # type: ignore[arg-type]  # trusted, shipped with the package
            conn.execute("INSERT INTO iemk.schema_migration (name) VALUES (%s)", (name,))
            applied_now.append(name)
    return applied_now
