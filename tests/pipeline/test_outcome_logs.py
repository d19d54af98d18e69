"""A refused document is one log line people can act on: ledger id, uniqueId, error code, who must act — and no
patient's name, no СНИЛС, no document content (issue 15, item 8)."""

import datetime as dt
import logging

import psycopg
import pytest

from iemk_etl import errors, settings
from iemk_etl.devtools import demo_data
from iemk_etl.pipeline import extract, validate
from iemk_etl.store import integration

END = dt.date(2026, 9, 10)
GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 9, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 9, 10, tzinfo=demo_data.MSK))


@pytest.fixture
def refused(fresh_dsn, caplog):
    """Documents seeded half failing (bad format, bad СНИЛС), run through format control with the log captured."""
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=8, days=2, seed=3, end=END, fail_share=1.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        ids = extract.extract(conn, GKB, *PERIOD)
        with caplog.at_level(logging.INFO, logger="iemk_etl"):
            validate.validate(conn, ids, settings.load())
        yield conn, ids, caplog


def _private(conn, ledger_id):
    """What a log must never show of this document: its patient's names and СНИЛС, its local uid's content."""
    return conn.execute(
        "SELECT p.family, p.given, p.patronymic, p.snils, d.cda FROM iemk.ledger l"
        " JOIN mis.semd_document d ON d.id = l.document_id JOIN mis.patient p ON p.id = d.patient_id"
        " WHERE l.id = %s", (ledger_id,)).fetchone()


def test_each_refused_document_is_one_line_with_ids_code_and_actor_and_no_patient_data(refused):
    conn, ids, caplog = refused
    rows = conn.execute("SELECT id, unique_id, version, error_code, last_error FROM iemk.ledger"
                        " WHERE id = ANY(%s) AND state = 'invalid' ORDER BY id", (ids,)).fetchall()
    assert rows, "the seed must give refused documents"
    codes = {code for *_, code, _ in rows}
    assert errors.FLK_NSI.code in codes, "a document refused for its patient's СНИЛС is the case that matters here"
    lines = [r.getMessage() for r in caplog.get_records("setup") if r.name == "iemk_etl.pipeline.outcomes"]
    for ledger_id, unique_id, version, code, _error in rows:
        mine = [line for line in lines if f"ledger_id={ledger_id} " in line]
        assert len(mine) == 1, (ledger_id, mine)
        kind = errors.kind(code)
        assert mine[0] == (f"document not accepted: step=validate ledger_id={ledger_id} uniqueId={unique_id} "
                           f"version={version} mo={GKB} code={code} actor={kind.actor.value} "
                           f"retry={kind.retry.value} — {kind.title}")
    assert len(lines) == len(rows)
    # and nothing of the patients in any line logged meanwhile
    text = "\n".join(r.getMessage() for r in caplog.get_records("setup"))
    snils_refused = conn.execute("SELECT id, last_error FROM iemk.ledger WHERE id = ANY(%s) AND error_code = %s",
                                 (ids, errors.FLK_NSI.code)).fetchall()
    for ledger_id, last_error in snils_refused:
        family, given, patronymic, snils, cda = _private(conn, ledger_id)
        assert snils and snils in last_error, "the МИС status names the СНИЛС; the log must not"
        for secret in (family, given, patronymic, snils, snils[:3] + "-" + snils[3:6]):
            if secret:
                assert secret not in text, secret
        assert bytes(cda)[:200].decode(errors="replace") not in text
