"""What the command modules share: argument types, the database connection, the МО's ИЭМК client."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable

import psycopg

from iemk_etl.settings import Settings
from iemk_etl.store import audit, db, integration
from iemk_etl.transport import client

# A command: the parsed arguments and the loaded settings in, the process exit code out.
Handler = Callable[[argparse.Namespace, Settings], int]
# What ``parser.add_subparsers()`` returns; argparse keeps the class private.
Subparsers = argparse._SubParsersAction


def date(value: str) -> dt.date:
    """An argparse type: a date as YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def check_period(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise SystemExit("--to must not be before --from")


def kinds(value: str) -> set[int] | None:
    """A comma-separated list of НСИ 1520 kind codes; None (all kinds) when empty."""
    return {int(k) for k in value.split(",") if k.strip()} or None


def connect(settings: Settings) -> tuple[str, psycopg.Connection]:
    """The project database, in autocommit, after checking its schema is current: commands other than the setup
    ones never migrate (an operator's read after an upgrade must not change production)."""
    dsn = db.resolve_dsn(settings)
    conn = db.connect(dsn, autocommit=True)
    try:
        db.check_current(conn)
    except BaseException:
        conn.close()
        raise
    return dsn, conn


def connect_migrated(settings: Settings) -> tuple[str, psycopg.Connection]:
    """The project database after applying pending migrations: only for the setup commands."""
    dsn = db.resolve_dsn(settings)
    db.migrate(dsn)
    return dsn, db.connect(dsn, autocommit=True)


def mo_code(conn: psycopg.Connection, mo: str) -> tuple[str, str]:
    """The (OID, code) of a МО given by either."""
    entry = integration.resolve_mo(conn, mo)
    return entry.oid, entry.code


def service_settings(settings: Settings) -> Settings:
    if not settings.iemk_url and not settings.repository_url:
        raise SystemExit("set IEMK_URL (the ИЭМК or emulator base URL) or the per-service URLs")
    return settings


def iemk_client(settings: Settings, dsn: str, code: str) -> client.IemkClient:
    """The МО's signed ИЭМК client, every envelope archived (iemk.audit_exchange)."""
    return client.client_for_mo(service_settings(settings), code, observer=audit.Recorder(dsn, code))


def mo_client(settings: Settings, mo: str) -> tuple[str, client.IemkClient]:
    """The МО's OID and its signed ИЭМК client, for the commands that ask ИЭМК on its behalf."""
    dsn, conn = connect(settings)
    with conn:
        oid, code = mo_code(conn, mo)
    return oid, iemk_client(settings, dsn, code)
