"""Shared fixtures: a real embedded PostgreSQL, fresh databases from a migrated template, dev keys.

Airflow reads its configuration when first imported, so its environment is set here, at import time,
before any test module can import it: a throwaway AIRFLOW_HOME with its own SQLite metadata database.
"""

from __future__ import annotations

import functools
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
    # No default in settings (a real ИЭМК needs the installation's own): the tests' system, as in the samples.
    "IEMK_CLIENT_ENTITY_ID": "17c74e63-dc38-438d-a27a-a1aa063ee7b8",
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
    from iemk_etl.store import db, embedded_pg

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
    from iemk_etl.devtools import certs

    return certs.create_dev_certificate(tmp_root / "certs")


# Tests of the official СЭМД packs (their XSD and Schematron) are marked `packs` — explicitly, or by asking for
# the `packs_dir` fixture — and skip with this reason when the packs are absent; every other test runs without them.
PACKS_ABSENT = "official СЭМД packs absent (IEMK_SEMD_PACKS)"


@functools.cache
def _official_packs() -> Path | None:
    """The packs folder in force, if it holds at least one kind's pack (a folder with CDA.xsd)."""
    from iemk_etl import settings

    try:
        found = settings.load().packs_dir
    except Exception:   # a setting refused at load leaves no usable packs; its own tests say why
        return None
    if found is None or not found.is_dir() or not any((d / "CDA.xsd").is_file() for d in found.iterdir()):
        return None
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason=PACKS_ABSENT)
    for item in items:
        if "packs_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.packs)
        if item.get_closest_marker("packs") is not None and _official_packs() is None:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if PACKS_ABSENT in str(r.longrepr)]
    if skipped:
        tests = "test" if len(skipped) == 1 else "tests"
        terminalreporter.write_line(f"{len(skipped)} {tests} skipped: {PACKS_ABSENT}; set IEMK_SEMD_PACKS to the "
                                    "packs folder (CI has ../shared/semd-packs) to run them", yellow=True)


@pytest.fixture(scope="session")
def packs_dir() -> Path:
    """The official packs, for tests of the packs themselves (they are marked `packs`)."""
    found = _official_packs()
    if found is None:
        pytest.skip(PACKS_ABSENT)
    return found


@pytest.fixture(scope="session")
def flk_packs() -> Path | None:
    """The ФЛК an emulator or pipeline test runs with: the official packs when present, else the built-in checks."""
    return _official_packs()


def _backends() -> list:
    from iemk_etl.signing import backend

    params = [pytest.param("python", id="python")]
    try:
        backend.get_backend("openssl")
        params.append(pytest.param("openssl", id="openssl"))
    except backend.BackendUnavailableError as exc:
        params.append(pytest.param("openssl", id="openssl", marks=pytest.mark.skip(
            reason=f"OpenSSL gost engine absent here ({exc}); CI installs it")))
    return params


@pytest.fixture(params=_backends())
def gost_backend(request):
    """Each GOST backend in turn: pure Python always, the OpenSSL engine where installed."""
    from iemk_etl.signing import backend

    return backend.get_backend(request.param)


@pytest.fixture(scope="session")
def openssl_gost() -> list[str]:
    """The openssl command with the gost engine, or a visible skip."""
    import shutil
    import subprocess

    exe = shutil.which("openssl")
    if exe is None:
        pytest.skip("openssl command not installed")
    probe = subprocess.run([exe, "engine", "gost"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("OpenSSL gost engine absent here (Debian libengine-gost-openssl); CI installs it")
    return [exe]
