"""The МИС schema, the integration switch and its two procedures, on a real PostgreSQL."""

import datetime as dt

import psycopg
import pytest

from iemk_etl.devtools import demo_data
from iemk_etl.store import db, integration, ledger

GKB = demo_data.DEMO_MO[0][0]
ORB = demo_data.DEMO_MO[1][0]


@pytest.fixture
def conn(fresh_dsn):
    with psycopg.connect(fresh_dsn, autocommit=True) as c:
        demo_data.seed(c, patients=6, days=2, seed=7, end=dt.date(2026, 11, 20), fail_share=0.0, unsigned_share=0.0)
        yield c


def _outbox(conn, item_type):
    return conn.execute("SELECT count(*) FROM iemk.outbox WHERE item_type = %s", (item_type,)).fetchone()[0]


def test_migrations_are_idempotent(fresh_dsn):
    assert db.migrate(fresh_dsn) == []


def test_switch_shows_0_of_2_then_2_of_2(conn):
    assert integration.status(conn, GKB)[0].shown == "0/2"
    assert integration.set_enabled(conn, "gkb7801", True).shown == "2/2"
    assert integration.status(conn, ORB)[0].shown == "0/2"
    assert integration.set_enabled(conn, GKB, False).shown == "0/2"


def test_unknown_mo_is_a_clear_error(conn):
    with pytest.raises(integration.UnknownMoError, match="1.2.3"):
        integration.set_enabled(conn, "1.2.3", True)


def _new_document(conn, mo_oid, uid, signed_at):
    patient_id, author_id = conn.execute(
        "SELECT p.id, s.id FROM mis.patient p JOIN mis.staff s ON s.mo_oid = p.mo_oid WHERE p.mo_oid = %s LIMIT 1",
        (mo_oid,)).fetchone()
    return conn.execute(
        "INSERT INTO mis.semd_document (mo_oid, kind_code, patient_id, author_id, local_uid, created_at, signed_at,"
        " cda) VALUES (%s, 42, %s, %s, %s, now(), %s, '\\x00') RETURNING id",
        (mo_oid, patient_id, author_id, uid, signed_at)).fetchone()[0]


def test_procedure_1_enqueues_a_document_when_signed_only_where_integration_is_on(conn):
    integration.set_enabled(conn, GKB, True)
    before = _outbox(conn, "document")
    doc = _new_document(conn, GKB, "new-1", None)
    assert _outbox(conn, "document") == before          # formed, not signed: not queued
    conn.execute("UPDATE mis.semd_document SET signed_at = now() WHERE id = %s", (doc,))
    assert _outbox(conn, "document") == before + 1      # the МИС signed it: queued by the trigger
    conn.execute("UPDATE mis.semd_document SET status = 'Подписан' WHERE id = %s", (doc,))
    assert _outbox(conn, "document") == before + 1      # other updates enqueue nothing
    _new_document(conn, ORB, "new-2", dt.datetime.now(dt.UTC))
    assert _outbox(conn, "document") == before + 1      # ORB's integration is off


def test_procedure_2_enqueues_patient_add_and_revise(conn):
    integration.set_enabled(conn, GKB, True)
    assert _outbox(conn, "patient") == 0
    conn.execute("INSERT INTO mis.patient (mo_oid, local_id, family, given, birth_date, sex, snils)"
                 " VALUES (%s, 'P-NEW', 'Орлова', 'Вера', '1990-05-05', 2, '11223344595')", (GKB,))
    assert _outbox(conn, "patient") == 1                # add
    conn.execute("UPDATE mis.patient SET family = 'Соколова' WHERE local_id = 'P-NEW'")
    assert _outbox(conn, "patient") == 2                # revise: demographics changed
    conn.execute("UPDATE mis.patient SET updated_at = now() WHERE local_id = 'P-NEW'")
    assert _outbox(conn, "patient") == 2                # nothing ИЭМК knows changed
    conn.execute("INSERT INTO mis.patient (mo_oid, local_id, family, given, birth_date, sex)"
                 " VALUES (%s, 'P-OFF', 'Зайцев', 'Олег', '1970-01-01', 1)", (ORB,))
    assert _outbox(conn, "patient") == 2                # ORB's integration is off


def test_status_column_accepts_only_the_seed_statuses(conn):
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE mis.semd_document SET status = 'Отправлен' WHERE id = (SELECT min(id) FROM"
                     " mis.semd_document)")


def test_seed_is_deterministic(pg_template, fresh_dsn):
    from psycopg.conninfo import make_conninfo

    def snapshot(dsn):
        with psycopg.connect(dsn, autocommit=True) as c:
            demo_data.seed(c, patients=10, days=3, seed=11, end=dt.date(2026, 11, 20))
            return (c.execute("SELECT local_id, family, given, snils, birth_date FROM mis.patient ORDER BY local_id")
                    .fetchall(),
                    c.execute("SELECT local_uid, signed_at, cda FROM mis.semd_document ORDER BY local_uid").fetchall())

    first = snapshot(fresh_dsn)
    other = make_conninfo(pg_template, dbname="iemk_seed_again")
    with psycopg.connect(pg_template, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS iemk_seed_again")
        c.execute("CREATE DATABASE iemk_seed_again TEMPLATE iemk_template")
    assert snapshot(other) == first
    with psycopg.connect(fresh_dsn, autocommit=True) as c:   # and a re-run adds nothing
        assert demo_data.seed(c, patients=10, days=3, seed=11, end=dt.date(2026, 11, 20)).documents == 0


def test_seeded_people_have_valid_snils_except_the_planned_failures(conn):
    from iemk_etl.protocol import snils

    staff = [r[0] for r in conn.execute("SELECT snils FROM mis.staff")]
    assert staff and all(snils.is_valid(s) for s in staff)
    patients = [r[0] for r in conn.execute("SELECT snils FROM mis.patient")]
    assert all(snils.is_valid(s) for s in patients)      # fail_share=0 in this fixture


@pytest.mark.parametrize(("state", "error", "shown"), [
    ("queued", None, "Подписан"), ("valid", None, "Подписан"), ("sent", None, "Передан в ИЭМК"),
    ("stored", None, "Сохранен в ИЭМК"), ("rejected", "XDSRegistryError: x", "Ошибка: XDSRegistryError: x"),
    ("invalid", None, "Ошибка: причина не указана"),
])
def test_visible_status_is_one_of_the_seed_strings(state, error, shown):
    assert ledger.visible_status(state, error) == shown


def test_message_id_is_stable_for_the_same_content_and_new_for_new_content():
    a = ledger.message_id("1.2", "u^1", 1, "h1")
    assert a == ledger.message_id("1.2", "u^1", 1, "h1")
    assert a != ledger.message_id("1.2", "u^1", 1, "h2")
    assert a != ledger.message_id("1.2", "u^1", 2, "h1")
