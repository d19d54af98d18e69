"""Patients before documents: the PIX feed against the emulator over HTTP."""

import dataclasses
import datetime as dt

import psycopg
import pytest

from iemk_etl import settings
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import PDQ_PATH, REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import extract, send, validate
from iemk_etl.pipeline import patients as patient_step
from iemk_etl.protocol import snils
from iemk_etl.protocol.hl7v3 import pdq
from iemk_etl.signing import keys
from iemk_etl.store import integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 7, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 7, 4, tzinfo=demo_data.MSK))


@pytest.fixture
def world(fresh_dsn, flk_packs, dev_keys):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=12, days=3, seed=8, end=dt.date(2026, 7, 4), fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        config = EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, require_registered_patient=True)
        with EmulatorServer(config, fresh_dsn) as emulator, CallbackServer(fresh_dsn) as callback, \
                client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id="c",
                                  signer=keys.load_signer(*dev_keys), timeout=10) as iemk:
            cfg = dataclasses.replace(settings.load().with_iemk_url(emulator.url), callback_url=callback.url)
            yield conn, fresh_dsn, cfg, iemk, emulator


def _pix_messages(emulator) -> int:
    return sum(1 for r in emulator.store.recent_messages(10_000) if r["service"] == "pix")


def test_patients_go_before_their_documents_and_only_once(world):
    conn, dsn, cfg, iemk, emulator = world
    ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
    before = send.send(dsn, ids, cfg, iemk)
    assert before.accepted_now == 0 and before.waiting_for_patient == len(ids)   # no patient known yet: none sent
    report = patient_step.feed(conn, GKB, ids, cfg, iemk)
    patients = conn.execute("SELECT count(DISTINCT d.patient_id) FROM mis.semd_document d JOIN iemk.ledger l"
                            " ON l.document_id = d.id WHERE l.id = ANY(%s)", (ids,)).fetchone()[0]
    assert report.accepted == patients and report.rejected == 0
    sent = send.send(dsn, ids, cfg, iemk)
    assert sent.accepted_now == len(ids)
    fed = _pix_messages(emulator)
    assert patient_step.feed(conn, GKB, ids, cfg, iemk).accepted == 0     # nothing new to say
    assert _pix_messages(emulator) == fed


def test_a_changed_surname_is_one_revise(world):
    conn, _, cfg, iemk, emulator = world
    ids = extract.extract(conn, GKB, *PERIOD)
    patient_step.feed(conn, GKB, ids, cfg, iemk)
    local_id = conn.execute("SELECT p.local_id FROM mis.patient p JOIN mis.semd_document d ON d.patient_id = p.id"
                            " WHERE p.mo_oid = %s ORDER BY p.id LIMIT 1", (GKB,)).fetchone()[0]
    conn.execute("UPDATE mis.patient SET family = 'Новосельцева', updated_at = now() WHERE mo_oid = %s"
                 " AND local_id = %s", (GKB, local_id))
    assert patient_step.feed(conn, GKB, ids, cfg, iemk).accepted == 1
    feeds = conn.execute("SELECT f.interaction, f.state FROM iemk.patient_feed f JOIN mis.patient p"
                         " ON p.id = f.patient_id WHERE p.local_id = %s ORDER BY f.updated_at", (local_id,)).fetchall()
    assert feeds == [("add", "accepted"), ("revise", "accepted")]
    answer = iemk.call(emulator.url + PDQ_PATH, pdq.ACTION,
                       pdq.build_request(pdq.PatientQuery(local_id=(GKB, local_id)), system_id="c"), service="pdq")
    assert [p.family for p in pdq.read_response(answer.body)] == ["Новосельцева"]


def test_a_refused_patient_blocks_only_their_documents(world):
    conn, dsn, cfg, iemk, _ = world
    victim = conn.execute("SELECT p.id, p.snils FROM mis.patient p JOIN mis.semd_document d ON d.patient_id = p.id"
                          " WHERE p.mo_oid = %s ORDER BY p.id LIMIT 1", (GKB,)).fetchone()
    wrong = victim[1][:9] + f"{(int(victim[1][9:]) + 1) % 100:02d}"
    assert not snils.is_valid(wrong)
    conn.execute("UPDATE mis.patient SET snils = %s WHERE id = %s", (wrong, victim[0]))
    ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
    report = patient_step.feed(conn, GKB, ids, cfg, iemk)
    assert report.rejected == 1 and report.documents_blocked >= 1
    statuses = dict(conn.execute("SELECT d.patient_id = %s, d.status FROM mis.semd_document d JOIN iemk.ledger l"
                                 " ON l.document_id = d.id WHERE l.id = ANY(%s) AND d.patient_id = %s",
                                 (victim[0], ids, victim[0])).fetchall())
    assert statuses[True] == ("Ошибка: [CRE-122]: PAT-001; Пациент не определен: "
                              f"[СНИЛС [{wrong}] не валидно контрольное число]")
    sent = send.send(dsn, ids, cfg, iemk)
    assert sent.accepted_now == len(ids) - report.documents_blocked       # the others go
