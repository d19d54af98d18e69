"""The whole chain on real parts: МИС PostgreSQL → export DAG (dag.test, in-process) → ИЭМК emulator over
HTTP → callback receiver → statuses back in the МИС."""

import contextlib
import datetime as dt
import io

import psycopg
import pytest
from lxml import etree
from psycopg.conninfo import make_conninfo

from iemk_etl import errors
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.faults import FaultProfile
from iemk_etl.emulator.server import EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.protocol import snils
from iemk_etl.semd.header import unique_id
from iemk_etl.store import audit, integration
from iemk_etl.transport.callback import CallbackServer

from semd_helpers import new_visit

END = dt.date(2026, 11, 21)            # seeded days: 11-16 … 11-20
FIRST, LAST = dt.date(2026, 11, 17), dt.date(2026, 11, 19)
GKB, ORB = demo_data.DEMO_MO[0][0], demo_data.DEMO_MO[1][0]
ALL_KINDS = [41, 42, 43, 119, 174, 186]


@contextlib.contextmanager
def _chain(pg_template, dev_keys, flk_packs, tmp_root, name: str, faults: str | None = None,
           env: dict[str, str] | None = None, **seed):
    """A МИС database seeded with ``seed``, the emulator (ФЛК with the official packs, ``faults`` injected) and the
    callback receiver; ``env`` over the settings. Chunks of 4 documents, so every run maps over several."""
    with psycopg.connect(pg_template, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name} TEMPLATE iemk_template")
    dsn = make_conninfo(pg_template, dbname=name)
    mo_config = tmp_root / f"{name}-mo.json"
    with psycopg.connect(dsn, autocommit=True) as conn:
        demo_data.seed(conn, **seed)
        for oid in (GKB, ORB):
            entry = integration.resolve_mo(conn, oid)
            integration.remember_mo(mo_config, entry)
        integration.set_enabled(conn, GKB, True)       # ORB stays off: its DAG must send nothing
    with pytest.MonkeyPatch.context() as mp, \
            EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05, require_registered_patient=True,
                                          logical_control=True, faults=FaultProfile.load(faults)), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        for name_, value in {"IEMK_SOURCE_DSN": dsn, "IEMK_URL": emulator.url, "IEMK_CALLBACK_URL": callback.url,
                           "IEMK_SIGN_CERT": str(dev_keys[0]), "IEMK_SIGN_KEY": str(dev_keys[1]),
                           "IEMK_MO_CONFIG": str(mo_config), "IEMK_CHUNK_DOCUMENTS": "4", **(env or {})}.items():
            mp.setenv(name_, value)
        from iemk_airflow import runner

        runner.init_metadata_db()
        yield dsn, emulator.emulator, runner


@pytest.fixture(scope="module")
def chain(pg_template, dev_keys, flk_packs, tmp_root):
    with _chain(pg_template, dev_keys, flk_packs, tmp_root, "iemk_chain", patients=30, days=5, seed=5, end=END,
                fail_share=0.5) as parts:
        yield parts


def _documents(dsn, mo_oid):
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT d.local_uid, d.signed_at, d.status, convert_from(d.cda, 'UTF8'), p.snils,"
            "       (SELECT count(*) FROM iemk.ledger l WHERE l.document_id = d.id)"
            " FROM mis.semd_document d JOIN mis.patient p ON p.id = d.patient_id WHERE d.mo_oid = %s"
            " ORDER BY d.local_uid, d.version",
            (mo_oid,)).fetchall()


def _has_document_code(xml: str) -> bool:
    root = etree.fromstring(xml.encode())
    return root.find("{urn:hl7-org:v3}code") is not None


def _in_period(signed_at):
    tz = demo_data.MSK
    return signed_at is not None and dt.datetime.combine(FIRST, dt.time(), tz) <= signed_at \
        < dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(), tz)


def test_three_day_export_gives_every_document_a_true_status(chain, flk_packs):
    dsn, emulator, runner = chain
    with psycopg.connect(dsn, autocommit=True) as conn:     # an envelope beyond IEMK_AUDIT_RETENTION_DAYS (90)
        expired = audit.insert(conn, audit.Envelope("out", "request", b"<old/>"))
        conn.execute("UPDATE iemk.audit_exchange SET at = now() - interval '100 days' WHERE id = %s", (expired,))
    results = runner.export_period(["gkb7801"], FIRST, LAST, out=io.StringIO())
    assert [(r.day, r.state) for r in results] == [(FIRST + dt.timedelta(days=n), "success") for n in range(3)]

    received = emulator.store.received_unique_ids()
    kinds_seen = set()
    for uid, signed_at, status, xml, patient_snils, ledger_rows in _documents(dsn, GKB):
        unique = unique_id(GKB, uid)
        if signed_at is None:
            assert (status, ledger_rows) == ("Не подписан", 0)
            kinds_seen.add("unsigned")
        elif not _in_period(signed_at):
            # outside the exported days: untouched, never sent
            assert (status, ledger_rows, unique in received) == ("Подписан", 0, False)
            kinds_seen.add("outside")
        elif not _has_document_code(xml):
            if flk_packs:       # the official XSD names the element
                assert status.startswith("Ошибка: Ошибка форматного контроля (XSD): ")
                assert "{urn:hl7-org:v3}code" in status
            else:               # without the packs the built-in checks do
                assert status == ("Ошибка: Ошибка встроенной проверки: отсутствует обязательный элемент "
                                  "ClinicalDocument/code/@code")
            assert unique not in received, "a document that failed format control was sent"
            kinds_seen.add("bad format")
        elif not snils.is_valid(patient_snils):
            # НСИ control checks the СНИЛС check digit before sending, as ИЭМК's patient index would (CRE-122)
            assert status == (f"Ошибка: Ошибка контроля НСИ: Элемент patientRole/id: СНИЛС [{patient_snils}] не "
                              "валидно контрольное число (id/@root [1.2.643.100.3]) "
                              "(/ClinicalDocument[1]/recordTarget[1]/patientRole[1]/id[2])")
            assert unique not in received
            kinds_seen.add("bad СНИЛС")
        else:
            assert status == "Сохранен в ИЭМК"
            assert unique in received
            kinds_seen.add("stored")
    assert kinds_seen == {"unsigned", "outside", "bad format", "bad СНИЛС", "stored"}
    with psycopg.connect(dsn) as conn:
        codes = {r[0] for r in conn.execute("SELECT DISTINCT error_code FROM iemk.ledger WHERE error_code IS NOT NULL")}
    # Every ledger error code is one of the taxonomy's, and each failure kind is told apart.
    assert codes == {"FLK_XSD", "FLK_NSI"}
    assert all(errors.known(code) for code in codes)
    _every_exchange_archived(dsn, expired)


def _every_exchange_archived(dsn, expired):
    """The DAG's client archives each ITI-41 and its answer with the ledger id, the receiver each reply, PIX
    envelopes carry the МО; write-back purged the expired envelope."""
    with psycopg.connect(dsn) as conn:
        stored = [r[0] for r in conn.execute("SELECT id FROM iemk.ledger WHERE state = 'stored'")]
        assert stored
        for ledger_id in stored:
            rows = audit.of_ledger(conn, [ledger_id])
            assert [(r.direction, r.kind, r.ledger_id) for r in rows] == \
                [("out", "request", ledger_id), ("in", "answer", ledger_id), ("in", "reply", ledger_id)]
        pix = conn.execute("SELECT count(*) FILTER (WHERE mo_oid = %s), count(*) FROM iemk.audit_exchange"
                           " WHERE service = 'pix'", (GKB,)).fetchone()
        assert pix[0] == pix[1] > 0
        assert conn.execute("SELECT count(*) FROM iemk.audit_exchange WHERE id = %s", (expired,)).fetchone()[0] == 0


def test_running_the_same_period_again_sends_nothing(chain):
    dsn, emulator, runner = chain
    before_stats, before_docs = emulator.stats(), _documents(dsn, GKB)
    results = runner.export_period(["1.2.643.5.1.13.13.12.2.77.7801"], FIRST, LAST, out=io.StringIO())
    assert all(r.state == "success" for r in results)
    assert emulator.stats()["received"] == before_stats["received"]
    assert emulator.stats().get("duplicate_deliveries", 0) == before_stats.get("duplicate_deliveries", 0)
    assert _documents(dsn, GKB) == before_docs


def test_an_mo_with_integration_off_sends_nothing(chain):
    dsn, emulator, runner = chain
    before = emulator.stats()["received"]
    results = runner.export_period(["orb5012"], FIRST, LAST, out=io.StringIO())
    assert all(r.state == "success" for r in results)
    assert emulator.stats()["received"] == before
    docs = _documents(dsn, ORB)
    assert docs and all(rows == 0 for *_, rows in docs)
    assert {status for _, _, status, *_ in docs} <= {"Подписан", "Не подписан"}




def test_sign_and_send_over_a_period_signs_then_exports(chain):
    dsn, emulator, runner = chain
    unsigned = [d for d in _documents(dsn, GKB) if d[1] is None and _created_in_period(dsn, d[0])]
    assert unsigned, "the seed must leave some documents of the period unsigned"
    with psycopg.connect(dsn, autocommit=True) as conn:
        new_visit(conn, GKB, FIRST, "LATE-1", hour=15)   # «Получить документы» first: formed, signed, sent
    before = emulator.stats()["received"]
    results = runner.sign_and_send(["gkb7801"], FIRST, LAST, ALL_KINDS, out=io.StringIO())
    assert [r.state for r in results] == ["success"]
    docs = {d[0]: d for d in _documents(dsn, GKB)}
    after = {uid: d[2] for uid, d in docs.items()}
    for uid, *_ in unsigned:
        assert docs[uid][1] is not None, uid                          # every unsigned document got signed
        assert after[uid] == "Сохранен в ИЭМК" or after[uid].startswith("Ошибка: "), after[uid]
        # and went on to ИЭМК unless the demo made its patient's СНИЛС bad on purpose (refused by НСИ control)
        if snils.is_valid(docs[uid][4] or ""):
            assert after[uid] == "Сохранен в ИЭМК", (uid, after[uid])
    assert after["42-LATE-1"] == "Сохранен в ИЭМК"
    assert emulator.stats()["received"] > before
    again = runner.sign_and_send(["gkb7801"], FIRST, LAST, ALL_KINDS, out=io.StringIO())   # nothing new to do
    assert [r.state for r in again] == ["success"]
    assert {uid: status for uid, _, status, *_ in _documents(dsn, GKB)} == after


def _created_in_period(dsn, local_uid):
    with psycopg.connect(dsn) as conn:
        created = conn.execute("SELECT created_at FROM mis.semd_document WHERE local_uid = %s",
                               (local_uid,)).fetchone()[0]
    return _in_period(created)


def test_the_dag_triggered_with_document_ids_sends_exactly_those(chain):
    dsn, emulator, runner = chain
    candidates = [(uid, signed_at) for uid, signed_at, status, xml, patient_snils, rows in _documents(dsn, GKB)
                  if signed_at is not None and rows == 0 and _has_document_code(xml) and snils.is_valid(patient_snils)]
    assert candidates, "the seed must leave valid documents outside the exported days"
    uid = candidates[0][0]
    with psycopg.connect(dsn) as conn:
        doc_id = conn.execute("SELECT id FROM mis.semd_document WHERE local_uid = %s", (uid,)).fetchone()[0]
        before = conn.execute("SELECT count(*) FROM iemk.ledger").fetchone()[0]
    from iemk_airflow.export_dag import build_all

    dag = build_all()["iemk_export__gkb7801"]
    run = dag.test(logical_date=dt.datetime(2026, 11, 25, tzinfo=demo_data.MSK), run_conf={"document_ids": [doc_id]})
    assert str(run.state) == "success"
    with psycopg.connect(dsn) as conn:
        new = conn.execute("SELECT document_id FROM iemk.ledger ORDER BY id OFFSET %s", (before,)).fetchall()
        status = conn.execute("SELECT status FROM mis.semd_document WHERE id = %s", (doc_id,)).fetchone()[0]
    assert new == [(doc_id,)] and status == "Сохранен в ИЭМК"


def test_a_record_changed_after_storing_goes_out_as_the_next_version(chain):
    """The МИС corrects a visit whose epicrisis ИЭМК already stored: «Получить и подписать» forms version 2 (own id,
    same set), the export sends it as a replacement (RPLC), ИЭМК stores it and deprecates version 1."""
    dsn, emulator, runner = chain
    with psycopg.connect(dsn, autocommit=True) as conn:
        local_uid, created = conn.execute(
            "SELECT local_uid, created_at FROM mis.semd_document WHERE mo_oid = %s AND kind_code = 42"
            " AND status = 'Сохранен в ИЭМК' ORDER BY local_uid LIMIT 1", (GKB,)).fetchone()
        conn.execute("UPDATE mis.visit SET conclusion = 'Диагноз уточнён после консультации' WHERE mo_oid = %s"
                     " AND local_id = %s", (GKB, local_uid.removeprefix("42-")))
    day = created.astimezone(demo_data.MSK).date()
    results = runner.sign_and_send(["gkb7801"], day, day, [42], out=io.StringIO())
    assert [r.state for r in results] == ["success"]
    with psycopg.connect(dsn) as conn:
        versions = conn.execute("SELECT version, status FROM mis.semd_document WHERE mo_oid = %s AND local_uid = %s"
                                " ORDER BY version", (GKB, local_uid)).fetchall()
        stored = dict(conn.execute(
            "SELECT unique_id, coalesce(status, '') || '|' || coalesce(replaces, '') FROM emulator.document"
            " WHERE unique_id IN (%s, %s)", (unique_id(GKB, local_uid), unique_id(GKB, f"{local_uid}.2"))).fetchall())
    assert versions == [(1, "Сохранен в ИЭМК"), (2, "Сохранен в ИЭМК")]
    first, second = unique_id(GKB, local_uid), unique_id(GKB, f"{local_uid}.2")
    assert stored[first].startswith("Deprecated|")
    assert stored[second].endswith(f"|{first}")


def test_all_six_kinds_go_through_the_chain_and_are_stored(pg_template, dev_keys, flk_packs, tmp_root):
    """Every kind the МИС forms passes the emulator's ФЛК (XSD and Schematron, as ИЭМК) and ends stored."""
    with _chain(pg_template, dev_keys, flk_packs, tmp_root, "iemk_six", patients=24, days=4, seed=3, end=END,
                fail_share=0.0, unsigned_share=0.0) as (dsn, emulator, runner):
        results = runner.export_period(["gkb7801"], FIRST, LAST, out=io.StringIO())
        assert all(r.state == "success" for r in results)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT kind_code, status FROM mis.semd_document WHERE mo_oid = %s AND signed_at >= %s"
                                " AND signed_at < %s", (GKB, *_bounds())).fetchall()
    by_kind: dict[int, set[str]] = {}
    for kind, status in rows:
        by_kind.setdefault(kind, set()).add(status)
    assert by_kind == {kind: {"Сохранен в ИЭМК"} for kind in ALL_KINDS}


def _bounds():
    tz = demo_data.MSK
    return dt.datetime.combine(FIRST, dt.time(), tz), dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(), tz)


def _task_instances(dag_id: str) -> dict[str, list[tuple[int, str]]]:
    """The latest run's task instances: task id → [(map index, state)]."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        rows = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)
        found: dict[str, list[tuple[int, str]]] = {}
        for ti in rows:
            found.setdefault(ti.task_id, []).append((ti.map_index, str(ti.state)))
    return {task: sorted(v) for task, v in found.items()}


def _xcom(dag_id: str, task_id: str):
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        row = session.query(XComModel).filter(XComModel.dag_id == dag_id, XComModel.run_id == run.run_id,
                                              XComModel.task_id == task_id, XComModel.key == "return_value").one()
        return row.value


@pytest.mark.parametrize("mode", ["deferrable", "reschedule"])
def test_a_run_whose_replies_never_come_fails_with_statuses_written_and_the_missing_counted(
        pg_template, dev_keys, flk_packs, tmp_root, mode):
    """ИЭМК accepts every ITI-41 but its asynchronous answers are lost (the emulator's lost_reply fault): the wait
    ends at IEMK_REPLY_TIMEOUT_SECONDS, the statuses are still written back, the documents stay «Передан в ИЭМК»
    with a note and in the lost-answer path, and the run ends failed on check_answers. The chunks are mapped."""
    lost = '{"seed": 3, "operations": {"iti41": {"lost_reply": 1.0}}}'
    env = {"IEMK_REPLY_TIMEOUT_SECONDS": "2", "IEMK_REPLY_POKE_SECONDS": "0.5", "IEMK_CHUNK_DOCUMENTS": "3",
           "IEMK_REPLY_WAIT": mode}
    with _chain(pg_template, dev_keys, flk_packs, tmp_root, f"iemk_lost_{mode}", faults=lost, env=env, patients=8,
                days=2, seed=7, end=END, fail_share=0.0, unsigned_share=0.0) as (dsn, emulator, runner):
        day = END - dt.timedelta(days=1)
        results = runner.export_period(["gkb7801"], day, day, out=io.StringIO())
        assert [r.state for r in results] == ["failed"]
        tis = _task_instances("iemk_export__gkb7801")
        waited = _xcom("iemk_export__gkb7801", "wait_for_replies")
        with psycopg.connect(dsn) as conn:
            sent = conn.execute("SELECT l.state, l.error_code, l.last_error, d.status FROM iemk.ledger l"
                                " JOIN mis.semd_document d ON d.id = l.document_id").fetchall()
        stats = emulator.stats()
    assert stats["replies_lost"] == stats["received"] == len(sent) >= 4
    assert {(state, code, status) for state, code, _, status in sent} == {("sent", "NO_ANSWER", "Передан в ИЭМК")}
    assert all(note.startswith("ответ ИЭМК не получен за ") for _, _, note, _ in sent)
    assert waited == {"answered": 0, "awaited": len(sent), "missing": len(sent), "timed_out": True}
    for mapped in ("validate", "send"):
        assert len(tis[mapped]) >= 2 and all(i >= 0 and s == "success" for i, s in tis[mapped]), tis[mapped]
    assert tis["wait_for_replies"] == [(-1, "success")]
    assert tis["write_statuses"] == [(-1, "success")]
    assert tis["check_answers"] == [(-1, "failed")]
