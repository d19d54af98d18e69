"""Both XDS metadata layouts (IEMK_XDS_METADATA_LAYOUT) end to end: extract, validate, send to the emulator over
HTTP, the answer back to «Сохранен в ИЭМК»; then ITI-18 lists every document with IHE metadata matching what was
sent, and ITI-43 returns the bytes."""

import dataclasses
import datetime as dt

import psycopg
import pytest

from iemk_etl import errors, settings
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import REGISTRY_PATH, REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.errors import IemkError
from iemk_etl.pipeline import extract, queries, replies, send, validate
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.protocol.xds.common import is_urn_uuid
from iemk_etl.signing import keys
from iemk_etl.store import integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

from exchange_helpers import wait_answers

END = dt.date(2026, 9, 10)
GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 9, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 9, 10, tzinfo=demo_data.MSK))


@pytest.fixture
def db(fresh_dsn):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=6, days=3, seed=1, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        yield fresh_dsn, conn


@pytest.mark.parametrize("layout", ["evidence", "legacy"])
def test_each_layout_ends_stored_and_is_listed_with_ihe_metadata(db, dev_keys, flk_packs, layout):
    dsn, conn = db
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05), dsn) as emulator, \
            CallbackServer(dsn) as callback, \
            client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id="17c74e63-dc38-438d-a27a-a1aa063ee7b8",
                              signer=keys.load_signer(*dev_keys), timeout=10) as iemk:
        cfg = dataclasses.replace(settings.load({"IEMK_XDS_METADATA_LAYOUT": layout}), callback_url=callback.url,
                                  repository_url=emulator.url + REPOSITORY_PATH,
                                  registry_url=emulator.url + REGISTRY_PATH)
        assert cfg.xds_metadata_layout == layout
        ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
        report = send.send(dsn, ids, cfg, iemk, patients_first=False)
        assert report.accepted_now == len(ids) > 0
        wait_answers(conn, report.sent)
        replies.write_back(conn, GKB, ids)
        assert {s for (s,) in conn.execute("SELECT DISTINCT status FROM mis.semd_document WHERE mo_oid = %s",
                                           (GKB,))} == {"Сохранен в ИЭМК"}

        sent = {u: (bytes(cda), kind) for u, cda, kind in conn.execute(
            "SELECT l.unique_id, d.cda, l.kind_code FROM iemk.ledger l JOIN mis.semd_document d"
            " ON d.id = l.document_id WHERE l.id = ANY(%s)", (ids,))}
        listed = queries.list_documents(iemk, cfg, xds_query.DocumentQuery(mo_oid=GKB))
        assert {e.unique_id for e in listed} == set(sent)
        for entry in listed:
            data, kind = sent[entry.unique_id]
            assert is_urn_uuid(entry.entry_uuid) and entry.repository_unique_id == cfg.repository_unique_id
            queries.check_entry(entry, data)                  # SHA-1 hash and size of what we sent
            assert entry.kind_code == kind                    # from classCode (evidence) or formatCode (legacy)
        # the kind asked in the layout's own slot finds its documents only
        for kind in {k for _, k in sent.values()}:
            by_kind = queries.list_documents(iemk, cfg, xds_query.DocumentQuery(mo_oid=GKB, kind_code=kind))
            assert {e.unique_id for e in by_kind} == {u for u, (_, k) in sent.items() if k == kind}

        one = next(iter(sent))
        shown = queries.show_document(iemk, cfg, conn, one)
        assert shown.data == sent[one][0] and shown.same_as_sent is True


def test_a_registry_hash_other_than_what_was_sent_is_registry_metadata():
    entry = xds_query.DocumentEntry("1.2.3^D-1", "P-1", 42, None, xds_query.APPROVED, "0" * 40, 3,
                                    "urn:uuid:9b1c7f0e-3c59-4d2a-9a61-0b7e0c1f5e21", "1.2.3")
    with pytest.raises(IemkError) as caught:
        queries.check_entry(entry, b"abc")
    assert caught.value.kind is errors.REGISTRY_METADATA
    with pytest.raises(IemkError) as retrieved:
        queries.check_retrieved(entry, b"abc")
    assert retrieved.value.kind is errors.RETRIEVED_MISMATCH


def test_the_emulator_gives_older_documents_their_sha1_size_and_entry_uuid(fresh_dsn):
    """A row stored before migration 002 (SHA-256 only) is completed when the emulator's store opens."""
    import hashlib

    from iemk_etl.emulator.store import Store

    Store(fresh_dsn).close()                                   # migrated
    data = b"<ClinicalDocument/>"
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO emulator.document (unique_id, patient_id, kind_code, content_hash, data, message_id)"
                     " VALUES ('1.2.3^old', 'P-1', 42, %s, %s, 'urn:uuid:old')",
                     (hashlib.sha256(data).hexdigest(), data))
    store = Store(fresh_dsn)
    try:
        [entry] = store.find_documents(xds_query.DocumentQuery(unique_ids=("1.2.3^old",), statuses=()))
    finally:
        store.close()
    assert (entry.content_hash, entry.size) == (hashlib.sha1(data).hexdigest(), len(data))
    assert is_urn_uuid(entry.entry_uuid)
    assert entry.class_code == "2^^1.2.643.5.1.13.13.11.1522" and entry.format_code == "42^^1.2.643.5.1.13.13.11.1520"
