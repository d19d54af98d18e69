"""The СЭМД signatures are checked before anything leaves: a document whose author's or МО's signature is missing,
garbage, over other bytes or by someone else is held «Ошибка: Подпись СЭМД …» (the МИС re-signs it) and never sent;
the others go."""

import dataclasses
import datetime as dt

import psycopg
import pytest

from iemk_etl import errors, settings
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import extract, send, validate
from iemk_etl.signing import cades, keys
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import integration
from iemk_etl.transport import client

END = dt.date(2026, 9, 10)
GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 9, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 9, 10, tzinfo=demo_data.MSK))
PREFIX = "Ошибка: Подпись СЭМД не прошла проверку: "

# what is done to a document's stored signatures → the status it must end with
DAMAGE = {
    "other_bytes": PREFIX + "подпись автора: хэш документа не совпадает с подписанным (документ изменён)",
    "missing": PREFIX + "подпись автора отсутствует",
    "garbage": PREFIX + "подпись автора: контейнер подписи не читается",
    "foreign": PREFIX + "подпись автора: сертификат «",
    "org_missing": PREFIX + "подпись МО отсутствует",
    "org_other_bytes": PREFIX + "подпись МО: хэш документа не совпадает с подписанным (документ изменён)",
}


@pytest.fixture
def damaged(fresh_dsn):
    """A seeded МИС (real GOST signatures) where one document per kind of damage had its signatures spoiled."""
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=8, days=3, seed=1, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        store = KeyStore(settings.load())
        rows = conn.execute(
            "SELECT d.id, d.cda, s.local_id, m.code FROM mis.semd_document d JOIN mis.staff s ON s.id = d.author_id"
            " JOIN mis.mo m ON m.oid = d.mo_oid WHERE d.mo_oid = %s AND d.signed_at >= %s AND d.signed_at < %s"
            " ORDER BY d.id", (GKB, *PERIOD)).fetchall()
        assert len(rows) > len(DAMAGE)
        staff = [r[0] for r in conn.execute("SELECT local_id FROM mis.staff WHERE mo_oid = %s", (GKB,))]
        victims = {}
        for how, (document_id, cda, author, mo_code) in zip(DAMAGE, rows, strict=False):
            signature, org_signature = _spoiled(how, bytes(cda), store, mo_code, author,
                                                next(s for s in staff if s != author))
            conn.execute("UPDATE mis.semd_document SET signature = %s, org_signature = %s WHERE id = %s",
                         (signature, org_signature, document_id))
            victims[how] = document_id
        yield fresh_dsn, conn, victims, store


def _spoiled(how: str, data: bytes, store: KeyStore, mo_code: str, author: str,
             someone_else: str) -> tuple[bytes | None, bytes | None]:
    own = cades.sign_bytes(data, store.staff_signer(mo_code, author))
    org = cades.sign_bytes(data, store.org_signer(mo_code))
    other = data.replace(b"</ClinicalDocument>", b"<!-- edited --></ClinicalDocument>")
    return {
        "other_bytes": (cades.sign_bytes(other, store.staff_signer(mo_code, author)), org),
        "missing": (None, org),
        "garbage": (b"\x30\x82\x01\x00 this is not CMS", org),
        "foreign": (cades.sign_bytes(data, store.staff_signer(mo_code, someone_else)), org),
        "org_missing": (own, None),
        "org_other_bytes": (own, cades.sign_bytes(other, store.org_signer(mo_code))),
    }[how]


def _status(conn, document_id: int) -> str:
    return conn.execute("SELECT status FROM mis.semd_document WHERE id = %s", (document_id,)).fetchone()[0]


def test_a_bad_signature_holds_its_document_and_is_never_sent(damaged, dev_keys, flk_packs):
    dsn, conn, victims, _ = damaged
    cfg = dataclasses.replace(settings.load(), callback_url="http://127.0.0.1:9/cb")
    extracted = extract.extract(conn, GKB, *PERIOD)
    ready = validate.validate(conn, extracted, cfg)
    for how, document_id in victims.items():
        assert _status(conn, document_id).startswith(DAMAGE[how]), (how, _status(conn, document_id))
    held = conn.execute("SELECT document_id, state, error_code FROM iemk.ledger WHERE document_id = ANY(%s)",
                        (list(victims.values()),)).fetchall()
    assert {(state, code) for _, state, code in held} == {("queued", errors.SEMD_SIGNATURE.code)}
    assert len(held) == len(victims)
    assert len(ready) == len(extracted) - len(victims) > 0              # every intact document goes on

    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=60), dsn) as emulator, \
            client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id=cfg.require_client_entity_id(),
                              signer=keys.load_signer(*dev_keys), timeout=5) as iemk:
        report = send.send(dsn, extracted, dataclasses.replace(cfg, callback_url=emulator.url + "/cb"), iemk,
                           patients_first=False)
        received = emulator.emulator.stats()["received"]
    assert report.accepted_now == received == len(ready)                 # the held ones never left
    assert {_status(conn, d)[: len(PREFIX)] for d in victims.values()} == {PREFIX}


def test_the_mis_re_signing_the_same_version_lets_it_go(damaged):
    """SEMD_SIGNATURE holds, it does not end: the fix of a bad signature is signing the same bytes again."""
    dsn, conn, victims, store = damaged
    extracted = extract.extract(conn, GKB, *PERIOD)
    validate.validate(conn, extracted, settings.load())
    document_id = victims["other_bytes"]
    cda, author, mo_code = conn.execute(
        "SELECT d.cda, s.local_id, m.code FROM mis.semd_document d JOIN mis.staff s ON s.id = d.author_id"
        " JOIN mis.mo m ON m.oid = d.mo_oid WHERE d.id = %s", (document_id,)).fetchone()
    signature = cades.sign_bytes(bytes(cda), store.staff_signer(mo_code, author))
    conn.execute("UPDATE mis.semd_document SET signature = %s WHERE id = %s", (signature, document_id))
    ready = validate.validate(conn, extracted, settings.load())
    ledger_id, state = conn.execute("SELECT id, state FROM iemk.ledger WHERE document_id = %s",
                                    (document_id,)).fetchone()
    assert ledger_id in ready and state == "valid"
    assert _status(conn, document_id) == "Подписан"
    assert _status(conn, victims["missing"]).startswith(DAMAGE["missing"])     # the others still wait for theirs
