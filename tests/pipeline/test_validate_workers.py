"""validate in worker processes (IEMK_FLK_PROCESSES > 1): the same ledger outcome, document by document, as the
task's own process gives; each state committed as its verdict arrives."""

import dataclasses
import datetime as dt

import psycopg

from iemk_etl import settings
from iemk_etl.devtools import demo_data
from iemk_etl.pipeline import extract, validate

GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 7, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 7, 4, tzinfo=demo_data.MSK))


def _outcome(conn, ids):
    return conn.execute("SELECT l.id, l.state, l.error_code, l.last_error, d.status FROM iemk.ledger l"
                        " JOIN mis.semd_document d ON d.id = l.document_id WHERE l.id = ANY(%s) ORDER BY l.id",
                        (ids,)).fetchall()


def test_workers_record_what_the_single_process_path_records(fresh_dsn, flk_packs, monkeypatch):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        # Failing and unsigned documents too: format findings, signature problems and passes all come back.
        demo_data.seed(conn, patients=6, days=3, seed=8, end=dt.date(2026, 7, 4), fail_share=0.3,
                       unsigned_share=0.2)
        ids = extract.extract(conn, GKB, *PERIOD)
        cfg = settings.load()
        monkeypatch.setattr(validate, "POOL_MIN_DOCUMENTS", 1)
        in_workers = validate.validate(conn, ids, dataclasses.replace(cfg, flk_processes=2))
        pooled = _outcome(conn, ids)
        conn.execute("UPDATE iemk.ledger SET state = 'queued', last_error = NULL, error_code = NULL"
                     " WHERE id = ANY(%s)", (ids,))
        here = validate.validate(conn, ids, dataclasses.replace(cfg, flk_processes=1))
        assert in_workers == here and 0 < len(here) < len(ids)
        assert pooled == _outcome(conn, ids)
        assert {row[1] for row in pooled} >= {"valid", "invalid"}
