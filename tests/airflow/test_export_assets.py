"""A run triggered with a period does what its params say, and each export run that wrote its statuses emits the
МО's asset event with the counts; the report DAG is scheduled on those assets (real МИС PostgreSQL, emulator,
callback receiver, dag.test in-process)."""

import datetime as dt
import json

import psycopg
import pytest
from test_export_dag import END, GKB, ORB, _chain

from iemk_etl.devtools import demo_data

DAY = dt.date(2026, 11, 19)         # seeded days: 11-18 … 11-20


@pytest.fixture(scope="module")
def chain(pg_template, dev_keys, flk_packs, tmp_root):
    with _chain(pg_template, dev_keys, flk_packs, tmp_root, "iemk_assets", patients=10, days=3, seed=11, end=END,
                fail_share=0.0) as parts:
        yield parts


def _asset_events(uri):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetModel.uri == uri).order_by(AssetEvent.id).all())
        return [(e.source_dag_id, e.source_run_id, dict(e.extra or {})) for e in rows]


def test_a_run_given_from_and_to_exports_those_days_and_emits_the_mo_asset_event(chain):
    dsn, emulator, runner = chain
    from iemk_airflow.export_dag import build_all

    dag = build_all()["iemk_export__gkb7801"]
    # The logical date's interval is [11-24, 11-25): the params, not the interval, say which days go.
    run = dag.test(logical_date=dt.datetime(2026, 11, 25, tzinfo=demo_data.MSK),
                   run_conf={"from": DAY.isoformat(), "to": DAY.isoformat()})
    assert str(run.state) == "success"
    start = dt.datetime.combine(DAY, dt.time(), demo_data.MSK)
    with psycopg.connect(dsn) as conn:
        signed_that_day = {r[0] for r in conn.execute(
            "SELECT id FROM mis.semd_document WHERE mo_oid = %s AND signed_at >= %s AND signed_at < %s",
            (GKB, start, start + dt.timedelta(days=1)))}
        in_ledger = {r[0] for r in conn.execute("SELECT DISTINCT document_id FROM iemk.ledger")}
        stored = conn.execute("SELECT count(*) FROM iemk.ledger WHERE state = 'stored'").fetchone()[0]
    assert signed_that_day and in_ledger == signed_that_day and stored == len(signed_that_day)

    # The metadata database is shared with other runs of the module: exactly one event is this run's.
    events = [e for e in _asset_events("iemk://export/gkb7801") if e[1] == run.run_id]
    assert [(dag_id, run_id) for dag_id, run_id, _ in events] == [("iemk_export__gkb7801", run.run_id)]
    extra = events[0][2]
    assert extra["mo_oid"] == GKB and extra["mo_code"] == "gkb7801" and extra["run_id"] == run.run_id
    counts = extra["counts"]
    assert counts["now_stored"] == len(signed_that_day)        # write_statuses' counts, carried as they were
    assert json.loads(json.dumps(extra)) == extra


def test_an_mo_with_integration_off_emits_no_asset_event(chain):
    from iemk_airflow.export_dag import build_all

    run = build_all()["iemk_export__orb5012"].test(logical_date=dt.datetime(2026, 11, 20, tzinfo=demo_data.MSK))
    assert str(run.state) == "success"
    assert _asset_events("iemk://export/orb5012") == []     # skipped runs tell nothing
    assert ORB


def test_the_report_dag_runs_on_any_mo_export_and_writes_the_report(chain, tmp_root):
    from airflow.sdk import AssetAny

    from iemk_airflow.export_dag import build_all

    report = build_all()["iemk_report"]
    condition = report.timetable.asset_condition
    assert isinstance(condition, AssetAny)
    assert sorted(a.uri for a in condition.objects) == ["iemk://export/gkb7801", "iemk://export/orb5012"]
    run = report.test()
    assert str(run.state) == "success"
    out = run.get_task_instance("report_statuses").xcom_pull(task_ids="report_statuses")
    text = open(out["csv"], encoding="utf-8").read()
    assert text.startswith("mo,status,documents") and "gkb7801" in text
