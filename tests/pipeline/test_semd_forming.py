"""«Получить документы»: the six kinds formed from the МИС database for a period — valid, idempotent, and a
record that cannot make a document is visible in «Ошибка: …» rather than lost."""

import datetime as dt

import psycopg
import pytest
from lxml import etree

from iemk_etl import cli, settings
from iemk_etl.devtools import demo_data
from iemk_etl.flk import validation
from iemk_etl.pipeline import forming, sign
from iemk_etl.semd import pdf
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store.mis.clinical import Source

from semd_helpers import H, new_visit

END = dt.date(2026, 11, 21)
DAYS = 3
GKB = demo_data.DEMO_MO[0][0]
MSK = demo_data.MSK
ALL_KINDS = {41, 42, 43, 119, 174, 186}
ERROR_TEXT = "отчёт «protocol.zip» в формате .zip не поддерживается: в СЭМД вкладывается только .pdf"


def _bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime.combine(first, dt.time(), MSK),
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), MSK))


@pytest.fixture(scope="module")
def seeded(pg_template):
    with psycopg.connect(pg_template, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS iemk_forming")
        c.execute("CREATE DATABASE iemk_forming TEMPLATE iemk_template")
    from psycopg.conninfo import make_conninfo

    dsn = make_conninfo(pg_template, dbname="iemk_forming")
    with psycopg.connect(dsn, autocommit=True) as conn:
        result = demo_data.seed(conn, patients=24, days=DAYS, seed=3, end=END, fail_share=0.0, unsigned_share=0.0)
    return dsn, result


def test_the_period_gives_all_six_kinds_and_every_document_passes_flk(seeded, packs_dir):
    dsn, result = seeded
    assert set(result.by_kind) == ALL_KINDS
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT kind_code, local_uid, cda, status FROM mis.semd_document").fetchall()
    assert {r[0] for r in rows} == ALL_KINDS
    for kind, uid, data, status in rows:
        assert status == "Подписан", uid
        assert validation.validate(kind, bytes(data), packs_dir=packs_dir, require_packs=True, logical=True) == [], uid


def test_every_department_stay_has_its_own_discharge_epicrisis(seeded):
    dsn, _ = seeded
    with psycopg.connect(dsn) as conn:
        stays = conn.execute(
            "SELECT count(*) FROM mis.department_stay s JOIN mis.hospitalisation h ON h.id = s.hospitalisation_id"
            " WHERE s.ended_at >= %s AND s.ended_at < %s", _bounds(END - dt.timedelta(days=DAYS), END)).fetchone()[0]
        documents = conn.execute("SELECT count(*) FROM mis.semd_document WHERE kind_code = 41").fetchone()[0]
    assert stays == documents > 0


def test_forming_the_same_period_again_adds_nothing(seeded):
    dsn, _ = seeded
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM mis.semd_document").fetchone()[0]
        report = forming.form_period(conn, GKB, *_bounds(END - dt.timedelta(days=DAYS), END))
        after = conn.execute("SELECT count(*) FROM mis.semd_document").fetchone()[0]
    assert (report.total, after) == (0, before)
    assert report.skipped > 0




def test_a_zipped_report_leaves_a_visible_error_and_the_batch_goes_on(seeded):
    dsn, _ = seeded
    day = END + dt.timedelta(days=5)
    with psycopg.connect(dsn, autocommit=True) as conn:
        zipped = new_visit(conn, GKB, day, "ZIP-1")
        new_visit(conn, GKB, day, "OK-1")
        conn.execute("INSERT INTO mis.report_template (visit_id, name, file_name, content, to_iemk, signed_at)"
                     " VALUES (%s, 'Протокол', 'protocol.zip', '\\x504b030400', true, now())", (zipped,))
        report = forming.form_period(conn, GKB, *_bounds(day, day))
        formed = dict(conn.execute("SELECT local_uid, status FROM mis.semd_document WHERE local_uid IN"
                                   " ('42-ZIP-1', '42-OK-1')").fetchall())
        signing = sign.sign_period(conn, KeyStore(settings.load()), GKB, *_bounds(day, day), [42])
        after = dict(conn.execute("SELECT local_uid, status FROM mis.semd_document WHERE local_uid IN"
                                  " ('42-ZIP-1', '42-OK-1')").fetchall())
    assert report.formed == {42: 1}
    assert formed["42-OK-1"] == "Не подписан"
    error = f"Ошибка: СЭМД не сформирован: {ERROR_TEXT}"
    assert formed["42-ZIP-1"] == error
    # the one that could not be formed is never signed (nor sent); the other one is
    assert (len(signing.signed), signing.errors) == (1, {})
    assert after == {"42-OK-1": "Подписан", "42-ZIP-1": error}


def test_documents_build_from_the_command_line(seeded, monkeypatch, capsys):
    dsn, _ = seeded
    day = END + dt.timedelta(days=9)
    with psycopg.connect(dsn, autocommit=True) as conn:
        new_visit(conn, GKB, day, "CLI-1")
    monkeypatch.setenv("IEMK_SOURCE_DSN", dsn)
    assert cli.main(["documents", "build", "--mo", "gkb7801", "--from", day.isoformat(), "--to",
                     day.isoformat()]) == 0
    assert "gkb7801: сформировано 1 (вид 42: 1); обновлено: 0; уже были: 0; не сформировано: 0" in \
        capsys.readouterr().out
    assert cli.main(["documents", "build", "--mo", "gkb7801", "--from", day.isoformat(), "--to",
                     day.isoformat()]) == 0
    assert "сформировано 0 (нет новых); обновлено: 0; уже были: 1" in capsys.readouterr().out


@pytest.mark.parametrize("kind", sorted(ALL_KINDS))
def test_documents_sample_writes_valid_documents_without_a_database(kind, tmp_path, monkeypatch, capsys, packs_dir):
    monkeypatch.setenv("IEMK_SOURCE_DSN", "postgresql://nobody@127.0.0.1:1/none")   # must not be touched
    monkeypatch.setenv("IEMK_SEMD_PACKS", str(packs_dir))
    monkeypatch.setenv("IEMK_REQUIRE_PACKS", "1")
    assert cli.main(["documents", "sample", "--kind", str(kind), "--count", "3", "--out", str(tmp_path),
                     "--day", "2026-11-25"]) == 0
    files = sorted(tmp_path.glob("*.xml"))
    assert len(files) == 3
    assert cli.main(["documents", "validate", *map(str, files)]) == 0
    assert capsys.readouterr().out.count("замечаний: 0") == 3


def test_forming_again_follows_the_mis_and_a_signed_document_gets_a_next_version(seeded, packs_dir):
    dsn, _ = seeded
    day = END + dt.timedelta(days=12)
    bounds = _bounds(day, day)
    with psycopg.connect(dsn, autocommit=True) as conn:
        fixed = new_visit(conn, GKB, day, "FIX-1")
        report_id = conn.execute(
            "INSERT INTO mis.report_template (visit_id, name, file_name, content, to_iemk, signed_at)"
            " VALUES (%s, 'Протокол', 'protocol.zip', '\\x504b030400', true, now()) RETURNING id",
            (fixed,)).fetchone()[0]
        edited = new_visit(conn, GKB, day, "EDIT-1")
        assert forming.form_period(conn, GKB, *bounds).errors == {f"visit:{fixed}": ERROR_TEXT}

        # the МИС fixes the report and edits the other visit; nothing is signed yet: forming again follows both
        conn.execute("UPDATE mis.report_template SET file_name = 'protocol.pdf', content = %s WHERE id = %s",
                     (pdf.simple_pdf("Protocol", ["ok"]), report_id))
        conn.execute("UPDATE mis.visit SET conclusion = 'Практически здоров' WHERE id = %s", (edited,))
        again = forming.form_period(conn, GKB, *bounds)
        rows = dict(conn.execute("SELECT local_uid, status FROM mis.semd_document WHERE local_uid IN"
                                 " ('42-FIX-1', '42-EDIT-1')").fetchall())
        edited_cda = conn.execute("SELECT convert_from(cda, 'UTF8') FROM mis.semd_document"
                                  " WHERE local_uid = '42-EDIT-1'").fetchone()[0]
        assert (again.formed, again.refreshed, again.errors) == ({42: 1}, 1, {})
        assert rows == {"42-FIX-1": "Не подписан", "42-EDIT-1": "Не подписан"}
        assert "Практически здоров" in edited_cda

        # once signed, the document stays as signed; a later change makes its next version
        conn.execute("UPDATE mis.semd_document SET signed_at = now(), status = 'Подписан'"
                     " WHERE local_uid = '42-EDIT-1'")
        conn.execute("UPDATE mis.visit SET conclusion = 'Здоров' WHERE id = %s", (edited,))
        late = forming.form_period(conn, GKB, *bounds)
        versions = conn.execute("SELECT version, status, cda FROM mis.semd_document WHERE local_uid = '42-EDIT-1'"
                                " ORDER BY version").fetchall()
        again = forming.form_period(conn, GKB, *bounds)
    assert (late.formed, late.refreshed, late.new_versions) == ({42: 1}, 0, [f"visit:{edited}"])
    assert [(v, s) for v, s, _ in versions] == [(1, "Подписан"), (2, "Не подписан")]
    assert bytes(versions[0][2]).decode() == edited_cda                   # what was signed is untouched
    second = etree.fromstring(bytes(versions[1][2]))
    assert second.xpath("string(h:id/@extension)", namespaces=H) == "42-EDIT-1.2"     # a document of its own
    assert second.xpath("string(h:setId/@extension)", namespaces=H) == "42-EDIT-1"    # in the same set
    assert second.xpath("string(h:versionNumber/@value)", namespaces=H) == "2"
    assert validation.validate(42, bytes(versions[1][2]), packs_dir=packs_dir, require_packs=True, logical=True) == []
    assert (again.total, again.new_versions) == (0, [])                    # and no third one for the same change



def _with_a_comment(monkeypatch) -> None:
    """A new release whose builders write the same record differently (here: one more XML comment)."""
    original = forming.build
    monkeypatch.setattr(forming, "build", lambda case: original(case) + b"<!-- a newer builder -->")


def _record_hash(conn, day: dt.date, source: str) -> str:
    [sourced] = [c for c in Source(conn, GKB).cases(*_bounds(day, day), {42}) if c.source == source]
    return forming.record_hash(sourced.case)


def test_a_builder_change_alone_makes_no_new_version_a_record_change_does(seeded, monkeypatch):
    dsn, _ = seeded
    day = END + dt.timedelta(days=15)
    whole = _bounds(END - dt.timedelta(days=DAYS), day)
    with psycopg.connect(dsn, autocommit=True) as conn:
        visit = new_visit(conn, GKB, day, "HASH-1")
        forming.form_period(conn, GKB, *_bounds(day, day))
        conn.execute("UPDATE mis.semd_document SET signed_at = now(), status = 'Подписан'"
                     " WHERE local_uid = '42-HASH-1'")
        # a row formed before record hashes were kept is judged by its bytes once, then keeps its record's hash
        conn.execute("UPDATE mis.semd_document SET source_hash = NULL WHERE local_uid = '42-HASH-1'")
        legacy = forming.form_period(conn, GKB, *_bounds(day, day))
        stored_hash = conn.execute("SELECT source_hash FROM mis.semd_document WHERE local_uid = '42-HASH-1'"
                                   ).fetchone()[0]
        assert stored_hash == _record_hash(conn, day, f"visit:{visit}")
        signed = dict(conn.execute("SELECT kind_code, count(*) FROM mis.semd_document WHERE signed_at IS NOT NULL"
                                   " GROUP BY kind_code").fetchall())
        before = conn.execute("SELECT count(*) FROM mis.semd_document").fetchone()[0]

        with monkeypatch.context() as patched:
            _with_a_comment(patched)
            upgraded = forming.form_period(conn, GKB, *whole)       # every signed document of six kinds, re-formed
            after_upgrade = conn.execute("SELECT count(*) FROM mis.semd_document").fetchone()[0]
            conn.execute("UPDATE mis.visit SET conclusion = 'Практически здоров' WHERE id = %s", (visit,))
            changed = forming.form_period(conn, GKB, *whole)
        versions = conn.execute("SELECT version, convert_from(cda, 'UTF8') FROM mis.semd_document"
                                " WHERE local_uid = '42-HASH-1' ORDER BY version").fetchall()
    assert (legacy.total, legacy.new_versions) == (0, [])
    assert set(signed) == ALL_KINDS
    assert (upgraded.total, upgraded.new_versions, after_upgrade) == (0, [], before)
    assert (changed.total, changed.new_versions) == (1, [f"visit:{visit}"])     # the changed record, and only it
    assert [v for v, _ in versions] == [1, 2]
    assert "Практически здоров" in versions[1][1] and "Практически здоров" not in versions[0][1]
    assert versions[1][1].endswith("<!-- a newer builder -->")              # the new version by the new builder
