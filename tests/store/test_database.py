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


# -- migrations: who applies them, and who only checks ------------------------------------------------------

def _applied(dsn, schema="iemk"):
    with psycopg.connect(dsn) as c:
        return [r[0] for r in c.execute(f"SELECT name FROM {schema}.schema_migration ORDER BY name")]


def test_hot_path_indexes_exist(fresh_dsn):
    with psycopg.connect(fresh_dsn) as c:
        names = {r[0] for r in c.execute("SELECT indexname FROM pg_indexes WHERE schemaname IN ('iemk', 'mis')")}
    assert {"ledger_document_idx", "semd_document_mo_created_idx"} <= names


def test_a_read_command_on_a_schema_one_migration_behind_refuses_and_names_db_migrate(fresh_dsn, tmp_path,
                                                                                       monkeypatch, capsys):
    from iemk_etl import cli

    last = _applied(fresh_dsn)[-1]
    with psycopg.connect(fresh_dsn) as c:
        c.execute("DELETE FROM iemk.schema_migration WHERE name = %s", (last,))
    monkeypatch.setenv("IEMK_SOURCE_DSN", fresh_dsn)
    monkeypatch.setenv("IEMK_HOME", str(tmp_path))
    assert cli.main(["status"]) == 2
    err = capsys.readouterr().err
    assert "iemk-etl db migrate" in err and last in err
    assert last not in _applied(fresh_dsn)               # refused, and applied nothing
    with pytest.raises(db.SchemaBehindError, match="iemk-etl db migrate") as caught:
        db.require_current(fresh_dsn)
    assert caught.value.pending == [last]
    assert cli.main(["db", "migrate"]) == 0              # the command that migrates
    assert last in _applied(fresh_dsn)
    assert cli.main(["status", "--format", "csv"]) == 0


def test_status_on_a_current_schema_applies_nothing(fresh_dsn, tmp_path, monkeypatch):
    from iemk_etl import cli

    def must_not_migrate(*args, **kwargs):
        raise AssertionError("a read command migrated")

    before = _applied(fresh_dsn)
    monkeypatch.setattr(db, "migrate", must_not_migrate)
    monkeypatch.setenv("IEMK_SOURCE_DSN", fresh_dsn)
    monkeypatch.setenv("IEMK_HOME", str(tmp_path))
    assert cli.main(["status", "--format", "csv"]) == 0
    assert _applied(fresh_dsn) == before


def test_an_unmigrated_database_names_every_migration(pg_template):
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(pg_template, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS iemk_empty")
        c.execute("CREATE DATABASE iemk_empty")
    dsn = make_conninfo(pg_template, dbname="iemk_empty")
    with pytest.raises(db.SchemaBehindError) as caught:
        db.require_current(dsn)
    assert caught.value.pending == [name for name, _ in db.migrations()]


def test_the_emulator_schema_goes_through_the_same_migrations(fresh_dsn):
    from iemk_etl.emulator.store import MIGRATIONS, SCHEMA, Store

    Store(fresh_dsn).close()
    assert _applied(fresh_dsn, "emulator") == [name for name, _ in db.migrations(MIGRATIONS)]
    assert db.migrate(fresh_dsn, package=MIGRATIONS, schema=SCHEMA) == []
    Store(fresh_dsn).close()                            # a second start finds it current
    db.require_current(fresh_dsn, package=MIGRATIONS, schema=SCHEMA)
    assert "001_emulator" not in _applied(fresh_dsn)     # each schema keeps its own books
