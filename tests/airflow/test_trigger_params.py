"""The export DAG's trigger form: its params, and what Airflow's REST API and dag.test refuse when a run is made."""

import datetime as dt
import json

import pytest

GKB = {"oid": "1.2.643.5.1.13.13.12.2.77.7801", "code": "gkb7801", "name": "ГКБ № 1"}
DAG_ID = "iemk_export__gkb7801"


@pytest.fixture(scope="module")
def dags(tmp_path_factory):
    """Our DAGs, serialised into the tests' metadata database as the dag-processor would."""
    config = tmp_path_factory.mktemp("trigger") / "mo.json"
    config.write_text(json.dumps({"mo": [GKB]}, ensure_ascii=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IEMK_MO_CONFIG", str(config))
        mp.delenv("AIRFLOW_VAR_IEMK_MO_LIST", raising=False)
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
        from airflow.utils.db import initdb
        from airflow.utils.session import create_session

        from iemk_airflow.export_dag import build_all

        initdb()
        manager = DagBundlesManager()
        with create_session() as session:
            manager.sync_bundles_to_db(session=session)
        for bundle in manager.get_all_dag_bundles():
            bundle.initialize()
            bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
            assert bag.import_errors == {}
            sync_bag_to_db(bag, bundle.name, bundle.version)
        yield build_all()


@pytest.fixture(scope="module")
def api(dags):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "trigger-params-test-" + "0" * 48)
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        with TestClient(create_app()) as client:
            yield client


def _trigger(api, conf):
    return api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})


def test_the_form_shows_every_key_a_run_reads_each_described(dags):
    from iemk_airflow import trigger_guard

    params = dags[DAG_ID].params
    assert set(params) == {"from", "to", "document_ids", "reprocess"}      # mo_oid (ignored) is gone
    for name in params:
        assert params.get_param(name).description, name
    assert params.get_param("from").schema["format"] == "date"
    from iemk_etl.pipeline import retry

    assert params.get_param("reprocess").schema["items"]["enum"] == [s.value for s in retry.REQUEUABLE]
    for dag_id, dag in dags.items():     # the API server's guard knows each DAG's params
        prefix = next((p for p in trigger_guard.ALLOWED_CONF if dag_id.startswith(p)), None)
        if prefix:
            assert trigger_guard.ALLOWED_CONF[prefix] == set(dag.params), dag_id


def test_a_trigger_with_a_period_or_documents_is_accepted_as_given(api):
    period = _trigger(api, {"from": "2026-11-17", "to": "2026-11-19"})
    assert period.status_code == 200, period.text
    assert period.json()["conf"] == {"from": "2026-11-17", "to": "2026-11-19"}
    chosen = _trigger(api, {"document_ids": [17, 42]})
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["conf"] == {"document_ids": [17, 42]}


@pytest.mark.parametrize(("conf", "says"), [
    ({"from": "2026-02-30"}, "from"),                 # not a date: Airflow's param validation
    ({"to": "19.11.2026"}, "to"),
    ({"document_ids": ["17"]}, "document_ids"),
    ({"reprocess": ["sent"]}, "reprocess"),           # only ended states
    ({"mo_oid": "1.2.643.5.1.13.13.12.2.50.5012"}, "mo_oid"),   # not a param: our trigger guard
    ({"from": "2026-11-17", "form": "2026-11-19"}, "form"),
])
def test_a_trigger_with_a_bad_param_or_an_unknown_key_is_refused(api, conf, says):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        before = session.query(DagRun).filter(DagRun.dag_id == DAG_ID).count()
    answer = _trigger(api, conf)
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["detail"]
    with create_session() as session:
        assert session.query(DagRun).filter(DagRun.dag_id == DAG_ID).count() == before   # no run was made


def test_dag_test_refuses_a_bad_date_before_any_task_runs(dags):
    from airflow.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="from"):
        dags[DAG_ID].test(logical_date=dt.datetime(2030, 1, 2, tzinfo=dt.UTC), run_conf={"from": "2026-13-01"})


def test_the_first_reading_task_refuses_what_airflow_lets_through():
    from iemk_airflow.export_dag import export_params, run_params

    allowed = set(export_params())
    with pytest.raises(ValueError, match="unknown param"):
        run_params({"mo_oid": "x"}, {"mo_oid": "x"}, allowed)
    with pytest.raises(ValueError, match="after 'to'"):
        run_params({"from": "2026-11-19", "to": "2026-11-17"}, {}, allowed)
    assert run_params({"from": "2026-11-17", "to": "2026-11-17"}, {"from": "2026-11-17"}, allowed)["to"]
