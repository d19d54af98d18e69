"""Every DAG file imports cleanly, with no database access at parse time."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_dags_parse_without_errors_and_without_a_database(tmp_path, monkeypatch):
    import psycopg

    from iemk_etl.store import embedded_pg

    config = tmp_path / "mo.json"
    config.write_text(json.dumps({"mo": [
        {"oid": "1.2.643.5.1.13.13.12.2.77.7801", "code": "gkb7801", "name": "ГКБ № 1"},
        {"oid": "1.2.643.5.1.13.13.12.2.50.5012", "code": "orb5012", "name": "Одинцовская ОБ"},
    ]}, ensure_ascii=False))
    monkeypatch.setenv("IEMK_MO_CONFIG", str(config))
    monkeypatch.delenv("AIRFLOW_VAR_IEMK_MO_LIST", raising=False)

    def no_database(*args, **kwargs):
        raise AssertionError("a DAG file touched a database at parse time")

    monkeypatch.setattr(psycopg, "connect", no_database)
    monkeypatch.setattr(embedded_pg, "start", no_database)

    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import CronDataIntervalTimetable

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert sorted(bag.dags) == ["iemk_export__gkb7801", "iemk_export__orb5012", "iemk_nsi_sync",
                                "iemk_reconcile__gkb7801", "iemk_reconcile__orb5012", "iemk_report",
                                "iemk_sign_and_send__gkb7801", "iemk_sign_and_send__orb5012"]
    nsi = bag.dags["iemk_nsi_sync"]
    assert nsi.task_ids == ["sync_dictionaries"] and nsi.timetable.expression == "0 0 * * 0"   # weekly
    dag = bag.dags["iemk_export__gkb7801"]
    assert set(dag.task_ids) == {"check_integration", "extract", "validate", "send", "wait_for_replies",
                                 "write_statuses", "check_answers"}
    # after the wait: write_statuses looks up the lost answers of earlier runs, then writes the statuses back
    assert dag.get_task("wait_for_replies").downstream_task_ids == {"write_statuses"}
    # write_statuses emits the asset event; the run's verdict on the answers after it
    assert dag.get_task("write_statuses").downstream_task_ids == {"check_answers"}
    assert [a.uri for a in dag.get_task("write_statuses").outlets] == ["iemk://export/gkb7801"]
    assert dag.get_task("validate").downstream_task_ids == {"send"}
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.max_active_runs == 1
    assert set(dag.params) == {"from", "to", "document_ids", "reprocess"}     # the trigger form: what a run reads
    assert dag.params["reprocess"] == [] and dag.params["document_ids"] == []
    _chunked_and_bounded(dag)
    sign = bag.dags["iemk_sign_and_send__gkb7801"]
    assert set(sign.task_ids) == {"check_integration", "form", "sign", "extract_documents", "validate", "send",
                                  "wait_for_replies", "write_statuses", "check_answers"}
    assert sign.get_task("write_statuses").outlets == []
    assert type(sign.timetable).__name__ == "NullTimetable"  # run by hand, never on a schedule
    _chunked_and_bounded(sign)


def _chunked_and_bounded(dag) -> None:
    """Issue 14.1/14.5/15.3: mapped chunks, the iemk_api pool with exponential backoff on the tasks calling ИЭМК, a
    deferrable reply wait that never soft-fails, a final check_answers, timeouts on every task and on the run."""
    from airflow.sdk import BaseSensorOperator

    for task_id in ("validate", "send"):
        assert dag.get_task(task_id).is_mapped, task_id
    for task_id in ("send", "write_statuses"):
        t = dag.get_task(task_id)
        assert t.pool == "iemk_api" and t.retry_exponential_backoff == 2.0 and t.max_retry_delay, task_id
    wait = dag.get_task("wait_for_replies")
    assert type(wait).__name__ == "WaitForReplies" and not isinstance(wait, BaseSensorOperator)   # deferrable
    assert not any(getattr(t, "soft_fail", False) for t in dag.tasks)
    assert dag.get_task("write_statuses").trigger_rule == "all_done"
    assert "check_answers" in dag.get_task("write_statuses").downstream_task_ids
    assert all(t.execution_timeout for t in dag.tasks), [t.task_id for t in dag.tasks if not t.execution_timeout]
    assert dag.dagrun_timeout is not None


@pytest.mark.parametrize("missing", [True])
def test_no_configured_mo_means_no_export_dags(tmp_path, monkeypatch, missing):
    monkeypatch.setenv("IEMK_MO_CONFIG", str(tmp_path / "absent.json"))
    monkeypatch.delenv("AIRFLOW_VAR_IEMK_MO_LIST", raising=False)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {} and sorted(bag.dags) == ["iemk_nsi_sync"]     # the dictionaries serve every МО
