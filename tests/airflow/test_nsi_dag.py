"""The weekly iemk_nsi_sync DAG, run in-process (dag.test) against the ФНСИ stand-in: the first run loads the
dictionaries the СЭМД cite, the second downloads nothing; without a user key the run fails and says why."""

import psycopg
import pytest

from iemk_etl.devtools.fnsi_standin import FnsiStandIn


@pytest.fixture
def nsi_env(fresh_dsn, monkeypatch):
    with FnsiStandIn(user_key="weekly-key") as standin:
        monkeypatch.setenv("IEMK_SOURCE_DSN", fresh_dsn)
        monkeypatch.setenv("IEMK_FNSI_URL", standin.url)
        monkeypatch.setenv("IEMK_FNSI_USER_KEY", "weekly-key")
        from iemk_airflow import runner

        runner.init_metadata_db()
        yield fresh_dsn, standin


def _held(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM iemk.nsi_dictionary").fetchone()[0]


def test_weekly_sync_loads_then_downloads_nothing(nsi_env):
    from iemk_airflow.nsi_dag import build_nsi_dag

    dsn, standin = nsi_env
    dag = build_nsi_dag()
    assert dag.dag_id == "iemk_nsi_sync" and dag.max_active_runs == 1
    first = dag.test()
    assert first.state == "success"
    held = _held(dsn)
    assert held > 0 and standin.requests["data"] > 0
    standin.requests.clear()
    second = dag.test()
    assert second.state == "success"
    assert _held(dsn) == held
    assert standin.requests.get("data", 0) == 0 and standin.requests.get("passport", 0) == 0


def test_without_a_user_key_the_run_fails(nsi_env, monkeypatch):
    from iemk_airflow.nsi_dag import build_nsi_dag

    dsn, standin = nsi_env
    monkeypatch.delenv("IEMK_FNSI_USER_KEY")
    run = build_nsi_dag().test()
    assert run.state == "failed"
    assert _held(dsn) == 0 and not standin.requests
