"""The export DAG's reply wait awaits the documents this run sent: this try's, and an earlier try's of the same
run (a failed try's return value is lost), never those of earlier runs."""

import datetime as dt
import types

import psycopg

from iemk_airflow import export_dag
from iemk_etl.devtools import demo_data
from iemk_etl.pipeline import extract
from iemk_etl.store import integration

GKB = demo_data.DEMO_MO[0][0]


def test_only_documents_sent_in_this_run_are_awaited(fresh_dsn, monkeypatch):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=4, days=2, seed=2, end=dt.date(2026, 7, 4), fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        ids = extract.extract(conn, GKB, None, None)
        assert len(ids) >= 4
        started = conn.execute("SELECT now()").fetchone()[0]
        last_night, earlier_try, this_try, answered = ids[:4]
        sent_at = {last_night: started - dt.timedelta(days=1), earlier_try: started + dt.timedelta(minutes=1),
                   this_try: started + dt.timedelta(minutes=2), answered: started + dt.timedelta(minutes=1)}
        for ledger_id, at in sent_at.items():
            state = "stored" if ledger_id == answered else "sent"
            conn.execute("UPDATE iemk.ledger SET state = %s, last_sent_at = %s, message_id = %s WHERE id = %s",
                         (state, at, f"urn:uuid:test-{ledger_id}", ledger_id))
    run = types.SimpleNamespace(start_date=started)
    monkeypatch.setattr(export_dag, "get_current_context", lambda: {"dag_run": run})
    assert export_dag._sent_in_this_run(fresh_dsn, ids, [this_try]) == sorted([earlier_try, this_try])
    # A run without a start time (never in practice) awaits what the task itself sent.
    run.start_date = None
    assert export_dag._sent_in_this_run(fresh_dsn, ids, [this_try]) == [this_try]
