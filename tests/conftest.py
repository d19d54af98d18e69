"""Shared fixtures: a real embedded PostgreSQL, fresh databases from a migrated template, dev keys.

Airflow reads its configuration when first imported, so its environment is set here, at import time,
before any test module can import it: a throwaway AIRFLOW_HOME with its own SQLite metadata database.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[1]
_TMP = Path(tempfile.mkdtemp(prefix="iemk-tests-"))
os.environ.update({
    "IEMK_HOME": str(_TMP / "iemk-home"),
    "AIRFLOW_HOME": str(_TMP / "airflow-home"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_TMP / 'airflow-home' / 'airflow.db'}",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "IEMK_REPLY_POKE_SECONDS": "1",
    "IEMK_REPLY_TIMEOUT_SECONDS": "60",
})
os.environ.pop("IEMK_SOURCE_DSN", None)
os.environ.pop("IEMK_SOURCE_CONN_ID", None)

_names = itertools.count(1)


@pytest.fixture(scope="session")
def tmp_root() -> Path:
    return _TMP


@pytest.fixture(scope="session")
def pg_template(tmp_root: Path):
    """The embedded server, and a template database with the schema applied once."""
    from iemk_etl import db, embedded_pg

    home = tmp_root / "pg"
    dsn = embedded_pg.start(home)
    template = make_conninfo(dsn, dbname="iemk_template")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS iemk_template")
        conn.execute("CREATE DATABASE iemk_template")
    db.migrate(template)
    yield dsn
    embedded_pg.stop(home)


@pytest.fixture
def fresh_dsn(pg_template: str) -> str:
    """A new, migrated, empty database for one test."""
    name = f"iemk_t{next(_names)}"
    with psycopg.connect(pg_template, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE iemk_template")
    return make_conninfo(pg_template, dbname=name)


@pytest.fixture(scope="session")
def dev_keys(tmp_root: Path) -> tuple[Path, Path]:
    from iemk_etl import keys

    return keys.create_dev_certificate(tmp_root / "certs")


@pytest.fixture(scope="session")
def packs_dir() -> Path:
    from iemk_etl import settings

    found = settings.load().packs_dir
    if found is None:
        pytest.skip("official СЭМД packs not found (set IEMK_SEMD_PACKS; CI has ../shared/semd-packs)")
    return found
