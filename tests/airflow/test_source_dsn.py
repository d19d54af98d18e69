"""Both ways to the source database — IEMK_SOURCE_DSN and an Airflow connection — with a password libpq must
quote: spaces, quotes, a backslash, ``@`` and ``/``."""

import dataclasses
import json
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from iemk_airflow import resources
from iemk_etl import settings
from iemk_etl.store import db

PASSWORD = "p@ss w/rd 'q' \"dq\" \\ end"
ROLE = "iemk_awkward"


@pytest.fixture
def awkward_role(fresh_dsn):
    """A login role whose password has every character that breaks naive formatting, and that the server really
    asks for: the embedded server trusts its Unix socket, so one pg_hba line (for this role only) requires it."""
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(PASSWORD)))
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        original = hba.read_text()
        hba.write_text(f"local all {ROLE} scram-sha-256\nhost all {ROLE} all scram-sha-256\n" + original)
        conn.execute("SELECT pg_reload_conf()")
    parts = conninfo_to_dict(fresh_dsn)
    try:
        _until_password_required(parts)
        yield parts
    finally:
        hba.write_text(original)
        with psycopg.connect(fresh_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"DROP ROLE IF EXISTS {ROLE}")


def _until_password_required(parts: dict) -> None:
    """The reload is asynchronous: wait until a wrong password is refused, so that a pass below proves the right one
    went through intact."""
    wrong = make_conninfo(**{**parts, "user": ROLE, "password": "wrong"})
    for _ in range(200):
        try:
            psycopg.connect(wrong, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            assert "password" in str(exc)
            return
        time.sleep(0.05)
    raise AssertionError("the server never started asking this role for its password")


def _whoami(dsn: str) -> str:
    with db.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT current_user").fetchone()[0]


def test_iemk_source_dsn_with_a_quoted_password(awkward_role, monkeypatch):
    dsn = make_conninfo(**{**awkward_role, "user": ROLE, "password": PASSWORD})
    monkeypatch.setenv("IEMK_SOURCE_DSN", dsn)
    assert _whoami(resources.source_dsn(settings.load())) == ROLE


@pytest.mark.parametrize("form", ["json", "uri"])
def test_an_airflow_connection_with_a_quoted_password(awkward_role, monkeypatch, form):
    parts = awkward_role
    host, port, dbname = parts.get("host", "localhost"), parts.get("port", "5432"), parts["dbname"]
    if form == "json":
        value = json.dumps({"conn_type": "postgres", "host": host, "port": int(port), "schema": dbname,
                            "login": ROLE, "password": PASSWORD})
    else:
        value = f"postgres://{ROLE}:{quote(PASSWORD, safe='')}@{quote(host, safe='')}:{port}/{dbname}"
    monkeypatch.setenv("AIRFLOW_CONN_IEMK_SOURCE_TEST", value)
    cfg = dataclasses.replace(settings.load(), source_conn_id="iemk_source_test")
    dsn = resources.source_dsn(cfg)
    assert conninfo_to_dict(dsn)["password"] == PASSWORD
    assert _whoami(dsn) == ROLE
