"""Database access: the DSN in force, connections, and the schema migrations the project ships.

One migration mechanism serves every schema we own: numbered ``NNN_name.sql`` files in a package, applied in
order, each recorded in ``<schema>.schema_migration``. The project's schemas (``mis``, ``iemk``) use
``iemk_etl.store.migrations`` with bookkeeping in ``iemk``; the emulator uses its own package and schema.

Only setup commands migrate (``iemk-etl db migrate``, ``db seed``, ``demo``); everything else calls
``require_current`` / ``check_current`` and refuses to work on a schema that is behind.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import psycopg
from psycopg import sql

from iemk_etl import errors
from iemk_etl.errors import ConfigurationError
from iemk_etl.settings import Settings

log = logging.getLogger(__name__)

# Any fixed number works; it only has to be the same for every process that migrates. One lock for every
# schema: migrations are rare and short, so serialising them all costs nothing.
_MIGRATION_LOCK = 7_150_520

PACKAGE = "iemk_etl.store.migrations"
SCHEMA = "iemk"
MIGRATE_COMMAND = "iemk-etl db migrate"


class NoDatabaseError(ConfigurationError, RuntimeError):
    default_kind = errors.NO_DATABASE


class SchemaBehindError(ConfigurationError, RuntimeError):
    """The database lacks migrations this code needs; an administrator must apply them."""

    default_kind = errors.SCHEMA_BEHIND

    def __init__(self, schema: str, pending: list[str]) -> None:
        self.schema = schema
        self.pending = pending
        super().__init__(f"схема базы данных {schema} отстаёт от программы: не применены миграции "
                         f"{', '.join(pending)}; выполните `{MIGRATE_COMMAND}`")


def resolve_dsn(settings: Settings, *, start_embedded: bool = True) -> str:
    """IEMK_SOURCE_DSN when set, else the embedded server under IEMK_HOME (started on demand)."""
    if settings.source_dsn:
        return settings.source_dsn
    if not start_embedded:
        raise NoDatabaseError("IEMK_SOURCE_DSN is not set and the embedded PostgreSQL is not allowed here")
    from iemk_etl.store import embedded_pg

    return embedded_pg.start(settings.home)


def connect(dsn: str, *, autocommit: bool = False, application_name: str = "iemk-etl") -> psycopg.Connection:
    # A bounded connect timeout: a task must fail visibly rather than hang on an unreachable server.
    return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=15, application_name=application_name)


class ConnectionPool:
    """A few autocommit connections kept for a threaded server (the callback receiver, the emulator's store): a
    request borrows one instead of connecting anew (a PostgreSQL connection costs a backend process and its
    start-up, milliseconds).

    A connection is opened on demand when none is free; at most ``size`` idle ones are kept. One that failed at the
    database level, or that comes back inside a transaction, is closed, never handed out again."""

    def __init__(self, dsn: str, size: int = 8, *, application_name: str = "iemk-etl") -> None:
        self.dsn = dsn
        self._size = size
        self._application_name = application_name
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = connect(self.dsn, autocommit=True, application_name=self._application_name)
        try:
            yield conn
        except psycopg.Error:
            conn.close()
            raise
        finally:
            self._give_back(conn)

    def _give_back(self, conn: psycopg.Connection) -> None:
        reusable = not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if reusable and self._idle.qsize() < self._size:
            self._idle.put(conn)
        elif not conn.closed:
            conn.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def migrations(package: str = PACKAGE) -> list[tuple[str, str]]:
    """The (name, SQL) of every migration shipped in ``package``, in order."""
    files = sorted((f for f in resources.files(package).iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def _bookkeeping(schema: str) -> sql.Composed:
    return sql.SQL("{}.schema_migration").format(sql.Identifier(schema))


def applied(conn: psycopg.Connection, schema: str = SCHEMA) -> set[str]:
    """Names of the migrations recorded in ``schema``; empty when the schema was never migrated."""
    table = conn.execute("SELECT to_regclass(%s)", (f"{schema}.schema_migration",)).fetchone()
    if table is None or table[0] is None:
        return set()
    return {r[0] for r in conn.execute(sql.SQL("SELECT name FROM {}").format(_bookkeeping(schema)))}


def pending(conn: psycopg.Connection, *, package: str = PACKAGE, schema: str = SCHEMA) -> list[str]:
    """The shipped migrations not yet applied to this database, in order."""
    done = applied(conn, schema)
    return [name for name, _ in migrations(package) if name not in done]


def check_current(conn: psycopg.Connection, *, package: str = PACKAGE, schema: str = SCHEMA) -> None:
    """Raise ``SchemaBehindError`` (naming the missing migrations) when the schema is behind the code."""
    missing = pending(conn, package=package, schema=schema)
    if missing:
        raise SchemaBehindError(schema, missing)


def require_current(dsn: str, *, package: str = PACKAGE, schema: str = SCHEMA) -> None:
    """``check_current`` on a connection of its own: for callers that only hold a DSN."""
    with connect(dsn, autocommit=True) as conn:
        check_current(conn, package=package, schema=schema)


def migrate(dsn: str, *, package: str = PACKAGE, schema: str = SCHEMA) -> list[str]:
    """Apply the migrations of ``package`` not yet applied; return their names. Safe to run concurrently."""
    applied_now: list[str] = []
    table = _bookkeeping(schema)
    with connect(dsn) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ("
                             " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())").format(table))
        done = applied(conn, schema)
        for name, text in migrations(package):
            if name in done:
                continue
            log.info("applying migration %s.%s", schema, name)
            conn.execute(text)  # type: ignore[arg-type]  # trusted, shipped with the package
            conn.execute(sql.SQL("INSERT INTO {} (name) VALUES (%s)").format(table), (name,))
            applied_now.append(name)
    return applied_now
