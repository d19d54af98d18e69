"""`iemk-etl requeue`: chosen ended documents again in a new round; --dry-run changes nothing."""

import dataclasses
import datetime as dt

import psycopg

from iemk_etl import cli, errors, settings
from iemk_etl.devtools import demo_data
from iemk_etl.pipeline import extract, validate
from iemk_etl.store import integration, ledger
from iemk_etl.store.ledger import State

GKB = demo_data.DEMO_MO[0][0]
END = dt.date(2026, 9, 10)


def _ended(conn) -> list[int]:
    """Every document of the МО ended: the first one rejected, the others failed in transport."""
    cfg = dataclasses.replace(settings.load(), packs_dir=None)
    ids = validate.validate(conn, extract.extract(conn, GKB, None, None), cfg)
    for n, ledger_id in enumerate(ids):
        with conn.transaction():
            if n == 0:
                ledger.set_state(conn, ledger_id, State.REJECTED, error="отклонён",
                                 error_code="XDS.CDA.ValidationError")
            else:
                ledger.set_state(conn, ledger_id, State.FAILED, error="не удалось", error_code=errors.TRANSPORT.code)
    return ids


def _table(conn) -> list[tuple]:
    return conn.execute("SELECT id, state, resend_round, error_code, message_id FROM iemk.ledger"
                        " ORDER BY id").fetchall()


def test_requeue_dry_run_changes_nothing_then_requeue_sends_failed_again(fresh_dsn, monkeypatch, capsys):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=3, days=2, seed=1, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        ids = _ended(conn)
        before = _table(conn)
        statuses_before = conn.execute("SELECT id, status FROM mis.semd_document ORDER BY id").fetchall()
        monkeypatch.setenv("IEMK_SOURCE_DSN", fresh_dsn)
        assert cli.main(["requeue", "--mo", "gkb7801", "--dry-run"]) == 0
        assert f"{len(ids) - 1} documents would be sent again (dry run" in capsys.readouterr().out
        assert _table(conn) == before
        assert conn.execute("SELECT id, status FROM mis.semd_document ORDER BY id").fetchall() == statuses_before
        assert conn.execute("SELECT count(*) FROM iemk.ledger_round").fetchone()[0] == 0

        day = END.isoformat()
        assert cli.main(["requeue", "--mo", "gkb7801", "--state", "failed", "--code", "TRANSPORT",
                         "--from", "2020-01-01", "--to", day]) == 0
        assert f"{len(ids) - 1} documents sent again in a new round" in capsys.readouterr().out
        after = {r[0]: r[1:4] for r in _table(conn)}
        assert after[ids[0]] == ("rejected", 0, "XDS.CDA.ValidationError")      # not chosen: untouched
        assert {after[i] for i in ids[1:]} == {("valid", 1, "REQUEUED")}
        kept = conn.execute("SELECT round, state, error_code FROM iemk.ledger_round ORDER BY ledger_id").fetchall()
        assert kept == [(0, "failed", "TRANSPORT")] * (len(ids) - 1)

        assert cli.main(["requeue", "--mo", "gkb7801", "--code", "NOPE"]) == 2
        assert "NOPE" in capsys.readouterr().err
