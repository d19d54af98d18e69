"""Export over a historical period as a native Airflow backfill, executed by a real scheduler.

`airflow standalone` (scheduler, api-server, dag-processor, triggerer) runs in a subprocess on a PostgreSQL
metadata database; `iemk-etl backfill` creates the backfill; the scheduler runs the export DAG for each day.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.store import integration
from iemk_etl.transport.callback import CallbackServer

ROOT = Path(__file__).resolve().parents[2]
END = dt.date(2026, 10, 16)                     # seeded days: 10-11 … 10-15
FIRST, LAST = dt.date(2026, 10, 12), dt.date(2026, 10, 14)
GKB = demo_data.DEMO_MO[0][0]
BIN = Path(sys.executable).parent
CHUNK = 6


def _fresh(pg_template: str, name: str, template: str | None) -> str:
    with psycopg.connect(pg_template, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return make_conninfo(pg_template, dbname=name)


def _wait(what: str, probe, timeout: float, log: Path) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = probe()
        except psycopg.Error:
            result = None
        if result:
            return result
        time.sleep(2)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}; airflow log tail:\n{tail}")


@pytest.fixture(scope="module")
def stack(pg_template, dev_keys, flk_packs, tmp_root):
    dsn = _fresh(pg_template, "iemk_backfill", "iemk_template")
    meta = _fresh(pg_template, "airflow_backfill", None)
    socket_dir = conninfo_to_dict(meta)["host"]
    mo_config = tmp_root / "backfill-mo.json"
    with psycopg.connect(dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=24, days=5, seed=5, end=END, fail_share=0.5)
        integration.set_enabled(conn, GKB, True)
        integration.remember_mo(mo_config, integration.resolve_mo(conn, GKB))
    home = tmp_root / "airflow-backfill"
    log = tmp_root / "airflow-standalone.log"
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        env = {**os.environ,
               "AIRFLOW_HOME": str(home),
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://postgres@/airflow_backfill?host={socket_dir}",
               "AIRFLOW__CORE__PARALLELISM": "2",
               "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
               "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
               "AIRFLOW__API__PORT": "18080",
               "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://localhost:18080/execution/",
               "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
               "IEMK_SOURCE_DSN": dsn, "IEMK_URL": emulator.url, "IEMK_CALLBACK_URL": callback.url,
               "IEMK_SIGN_CERT": str(dev_keys[0]), "IEMK_SIGN_KEY": str(dev_keys[1]),
               "IEMK_MO_CONFIG": str(mo_config), "IEMK_REPLY_POKE_SECONDS": "2",
               # Chunks of a few documents, so each day's mapped validate/feed/send have several to run at once.
               "IEMK_CHUNK_DOCUMENTS": str(CHUNK)}
        with log.open("wb") as out:
            proc = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield dsn, meta, env, emulator.emulator, log
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_backfill_exports_exactly_the_days_asked(stack):
    dsn, meta, env, emulator, log = stack

    def dag_registered():
        with psycopg.connect(meta) as c:
            return c.execute("SELECT 1 FROM dag WHERE dag_id = 'iemk_export__gkb7801' AND NOT is_paused").fetchone()

    _wait("the DAG to be parsed", dag_registered, 240, log)
    # The project's Airflow setup (the pool iemk_api), as an operator runs it after `airflow db migrate`.
    setup = subprocess.run([str(BIN / "python"), "-m", "iemk_airflow.setup", "--slots", "2"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert setup.returncode == 0 and "pool iemk_api: 2 slots" in setup.stdout, setup.stdout + setup.stderr
    created = subprocess.run([str(BIN / "iemk-etl"), "backfill", "--mo", "gkb7801", "--from", str(FIRST),
                              "--to", str(LAST)], env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stdout + created.stderr

    def backfill_done():
        with psycopg.connect(meta) as c:
            rows = c.execute("SELECT state FROM dag_run WHERE run_type = 'backfill'").fetchall()
        return rows if len(rows) == 3 and all(r[0] in ("success", "failed") for r in rows) else None

    states = _wait("the backfill runs to finish", backfill_done, 480, log)
    assert [s for (s,) in states] == ["success"] * 3

    with psycopg.connect(dsn) as c:
        days = {d for (d,) in c.execute(
            "SELECT DISTINCT (signed_at AT TIME ZONE 'Europe/Moscow')::date FROM iemk.ledger")}
        outside = c.execute(
            "SELECT count(*) FROM mis.semd_document WHERE signed_at IS NOT NULL AND status <> 'Подписан'"
            " AND NOT ((signed_at AT TIME ZONE 'Europe/Moscow')::date BETWEEN %s AND %s)", (FIRST, LAST)).fetchone()[0]
        statuses = {s for (s,) in c.execute(
            "SELECT status FROM mis.semd_document WHERE mo_oid = %s"
            " AND (signed_at AT TIME ZONE 'Europe/Moscow')::date BETWEEN %s AND %s", (GKB, FIRST, LAST))}
    assert days == {FIRST + dt.timedelta(days=n) for n in range(3)}
    assert outside == 0
    assert "Сохранен в ИЭМК" in statuses
    assert not ({"Подписан", "Передан в ИЭМК"} & statuses), statuses
    assert emulator.stats()["received"] > 0
    _pool_and_deferral(meta)
    _chunks_ran_at_once(meta)


def _chunks_ran_at_once(meta: str) -> None:
    """The mapped tasks were given several chunks a day, and on the LocalExecutor with parallelism 2 two chunks of
    one run's mapped task ran at the same time (their [start, end] intervals overlap). One run at a time
    (max_active_runs=1), so the two slots can only have gone to one run's tasks."""
    with psycopg.connect(meta) as c:
        mapped = c.execute("SELECT run_id, task_id, count(*) FROM task_instance WHERE map_index >= 0"
                           " AND run_id LIKE 'backfill%%' GROUP BY run_id, task_id").fetchall()
        overlapping = c.execute(
            "SELECT a.run_id, a.task_id, a.map_index, b.map_index FROM task_instance a JOIN task_instance b"
            " ON a.dag_id = b.dag_id AND a.run_id = b.run_id AND a.task_id = b.task_id AND a.map_index < b.map_index"
            " WHERE a.map_index >= 0 AND a.run_id LIKE 'backfill%%' AND a.state = 'success' AND b.state = 'success'"
            " AND a.start_date < b.end_date AND b.start_date < a.end_date").fetchall()
    assert {task for _, task, _ in mapped} == {"validate", "send"}, mapped
    assert any(n >= 2 for _, task, n in mapped if task == "validate"), mapped
    assert overlapping, f"no two chunks of a mapped task ran at once: {mapped}"


def _pool_and_deferral(meta: str) -> None:
    """The tasks calling ИЭМК ran in the pool iemk_api; each run's reply wait ended in the triggerer's event."""
    with psycopg.connect(meta) as c:
        pools = {r for r in c.execute("SELECT DISTINCT task_id, pool FROM task_instance WHERE task_id IN"
                                      " ('send', 'write_statuses')")}
        waits = c.execute("SELECT count(*) FROM task_instance WHERE task_id = 'wait_for_replies'"
                          " AND state = 'success' AND run_id LIKE 'backfill%%'").fetchone()[0]
    assert pools and {pool for _, pool in pools} == {"iemk_api"}, pools
    assert waits == 3
