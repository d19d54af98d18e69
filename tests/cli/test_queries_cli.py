"""Search, list, show and one document by hand, as a user runs them: the CLI against the emulator over HTTP."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from iemk_etl import settings
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.store import integration
from iemk_etl.transport.callback import CallbackServer

GKB = demo_data.DEMO_MO[0][0]


@pytest.fixture(scope="module")
def stack(pg_template, flk_packs, tmp_path_factory):
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(pg_template, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS iemk_cli")
        c.execute("CREATE DATABASE iemk_cli TEMPLATE iemk_template")
    dsn = make_conninfo(pg_template, dbname="iemk_cli")
    home = tmp_path_factory.mktemp("cli-home")
    with psycopg.connect(dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=8, days=2, seed=2, end=dt.date(2026, 6, 3), fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, require_registered_patient=True),
                        dsn) as emulator, CallbackServer(dsn) as callback:
        env = {**os.environ, "IEMK_SOURCE_DSN": dsn, "IEMK_HOME": str(home), "IEMK_URL": emulator.url,
               "IEMK_CALLBACK_URL": callback.url, "IEMK_KEYS_DIR": str(settings.load().keys_dir)}
        yield dsn, env, emulator


def _cli(env, *args):
    result = subprocess.run([str(Path(sys.executable).parent / "iemk-etl"), *map(str, args)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _documents(dsn):
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT d.id, d.local_uid, p.local_id, p.snils, p.family, p.given, p.birth_date,"
                            " d.created_at FROM mis.semd_document d JOIN mis.patient p ON p.id = d.patient_id"
                            " WHERE d.mo_oid = %s ORDER BY d.id", (GKB,)).fetchall()


def test_send_one_document_by_hand_twice_registers_it_once(stack):
    dsn, env, emulator = stack
    doc_id, local_uid, *_ = _documents(dsn)[0]
    first = _cli(env, "send", "--document", doc_id)
    assert "Сохранен в ИЭМК" in first.stdout
    received = emulator.emulator.stats()["received"]
    again = _cli(env, "send", "--document", doc_id)
    assert "Сохранен в ИЭМК" in again.stdout
    assert emulator.emulator.stats()["received"] == received             # not sent again
    refreshed = _cli(env, "status", "--document", doc_id, "--refresh")
    assert f"документ {doc_id} ({local_uid}, версия 1): Сохранен в ИЭМК" in refreshed.stdout


def test_patient_search_by_each_key(stack):
    dsn, env, _ = stack
    doc_id, _, local_id, snils, family, given, birth, _ = _documents(dsn)[0]
    _cli(env, "send", "--document", doc_id)                               # the patient goes to ИЭМК first
    for args in (["--local-id", local_id], ["--snils", snils],
                 ["--family", family, "--given", given, "--birth", birth.isoformat()]):
        out = _cli(env, "patients", "search", "--mo", "gkb7801", *args).stdout
        assert f"{GKB} {local_id}: {family} {given}" in out and "найдено: 1" in out


def test_list_returns_exactly_the_documents_of_the_period_and_show_is_byte_identical(stack, tmp_path):
    dsn, env, _ = stack
    docs = _documents(dsn)
    for doc in docs:
        _cli(env, "send", "--document", doc[0])
    day = docs[0][7].astimezone(demo_data.MSK).date()
    of_day = {d[1] for d in docs if d[7].astimezone(demo_data.MSK).date() == day}
    out = _cli(env, "documents", "list", "--mo", "gkb7801", "--from", day, "--to", day).stdout
    listed = {line.split("^", 1)[1].split()[0] for line in out.splitlines() if "^" in line}
    assert listed == of_day and f"документов: {len(of_day)}" in out
    unique = out.splitlines()[0].split()[0]
    shown = _cli(env, "documents", "show", unique, "--out", tmp_path / "doc.xml")
    with psycopg.connect(dsn) as conn:
        sent = bytes(conn.execute("SELECT cda FROM mis.semd_document WHERE local_uid = %s",
                                  (unique.split("^", 1)[1],)).fetchone()[0])
    assert (tmp_path / "doc.xml").read_bytes() == sent
    assert "совпадают с переданными" in shown.stderr and "подпись: " in shown.stderr and "НЕ верна" not in shown.stderr


def test_reconcile_finds_and_repairs_both_kinds_of_drift(stack, tmp_path):
    dsn, env, emulator = stack
    docs = _documents(dsn)
    for doc in docs:
        _cli(env, "send", "--document", doc[0])
    day = docs[0][7].astimezone(demo_data.MSK).date()
    of_day = [d for d in docs if d[7].astimezone(demo_data.MSK).date() == day]
    assert len(of_day) >= 2
    deleted, flipped = of_day[0], of_day[1]
    deleted_uid = f"{GKB}.100.1.1.51^{deleted[1]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM emulator.document WHERE unique_id = %s", (deleted_uid,))   # gone on their side
        conn.execute("UPDATE iemk.ledger SET state = 'rejected', last_error = 'x' WHERE document_id = %s",
                     (flipped[0],))                                                        # wrong on ours
        conn.execute("INSERT INTO emulator.document (unique_id, patient_id, mo_oid, kind_code, content_hash, data,"
                     " message_id, creation_time) SELECT '1.2.3^stranger', patient_id, mo_oid, kind_code, content_hash,"
                     " data, message_id, creation_time FROM emulator.document LIMIT 1")     # unknown to us
        conn.execute("UPDATE emulator.document SET mo_oid = %s, creation_time = %s WHERE unique_id = '1.2.3^stranger'",
                     (GKB, flipped[7]))
    out = _cli(env, "reconcile", "--mo", "gkb7801", "--from", day, "--to", day, "--csv", tmp_path / "r.csv").stdout
    report = (tmp_path / "r.csv").read_text(encoding="utf-8")
    assert f"{deleted_uid},missing_in_iemk" in report
    assert f"{GKB}.100.1.1.51^{flipped[1]},status_mismatch,rejected,Approved" in report
    assert "1.2.3^stranger,unknown_here" in report
    assert "missing_in_iemk" in out
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT status FROM mis.semd_document WHERE id = %s", (flipped[0],)).fetchone()[0] \
            == "Сохранен в ИЭМК"
        assert conn.execute("SELECT state, resend_round FROM iemk.ledger WHERE document_id = %s",
                            (deleted[0],)).fetchone() == ("valid", 1)
    again = _cli(env, "send", "--document", deleted[0])                   # the re-queued one goes again
    assert "Сохранен в ИЭМК" in again.stdout
    assert emulator.store.document(deleted_uid) is not None
