"""``iemk_nsi_sync``: the weekly download of the НСИ dictionaries the СЭМД cite (issue 13).

One task: ``pipeline.nsi.sync`` against the ФНСИ REST API (IEMK_FNSI_URL, IEMK_FNSI_USER_KEY). Only versions the
database does not hold are downloaded, so a rerun or a retry costs a version list per dictionary. XCom carries the
counts, never the dictionaries.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import DAG, dag, task
from airflow.sdk.exceptions import AirflowFailException

from iemk_airflow import resources
from iemk_etl import settings as settings_mod
from iemk_etl.nsi.fnsi import FnsiClient
from iemk_etl.pipeline import nsi
from iemk_etl.store import db

DAG_ID = "iemk_nsi_sync"


@task(execution_timeout=dt.timedelta(hours=2))
def sync_dictionaries() -> dict[str, int]:
    settings = settings_mod.load()
    if not settings.fnsi_user_key:
        # A setting, not the network: retrying changes nothing, so the run fails at once and says why.
        raise AirflowFailException("не задан ключ пользователя ФНСИ (IEMK_FNSI_USER_KEY): справочники не загрузить")
    # Autocommit: each version is stored in its own transaction, so a killed run keeps what it downloaded.
    with db.connect(resources.source_dsn(settings), autocommit=True) as conn, \
            FnsiClient(settings.fnsi_url, settings.fnsi_user_key, timeout=settings.http_timeout) as client:
        db.check_current(conn)
        result = nsi.sync(conn, client)
    for oid, why in result.missing.items():
        # A version the documents cite and ФНСИ lacks: the СЭМД's codes must be corrected, not the sync retried.
        print(f"НСИ {oid}: {why}")  # noqa: T201 - the task log is the operator's report
    return {"loaded": len(result.loaded), "unchanged": len(result.unchanged), "missing": len(result.missing)}


def build_nsi_dag() -> DAG:
    settings = settings_mod.load()
    # ФНСИ busy or unreachable: try again later in the same run, with a growing wait.
    retrying = {"retries": 3, "retry_delay": dt.timedelta(seconds=settings.task_retry_seconds),
                "retry_exponential_backoff": True}

    @dag(dag_id=DAG_ID, default_args=retrying, schedule="@weekly",
         start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Moscow"), catchup=False, max_active_runs=1,
         dagrun_timeout=dt.timedelta(hours=3), tags=["iemk", "nsi"], doc_md=__doc__)
    def nsi_sync() -> None:
        sync_dictionaries()

    return nsi_sync()
