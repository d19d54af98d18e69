"""Chunks of a run (issue 14.1): count and byte bounds, patients kept together, and row locks that keep two
concurrent sends of the same documents from POSTing any of them twice."""

import dataclasses
import datetime as dt
import threading

import psycopg
import pytest

from iemk_etl import settings
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.faults import FaultProfile
from iemk_etl.emulator.server import REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import chunks, extract, send, validate
from iemk_etl.signing import keys
from iemk_etl.store import integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

GKB = demo_data.DEMO_MO[0][0]
END = dt.date(2026, 8, 10)


def test_count_bound():
    sized = [(i, i, 10) for i in range(1, 8)]          # seven patients, one document each
    assert chunks.split(sized, max_documents=3, max_bytes=10**9) == [[1, 2, 3], [4, 5, 6], [7]]


def test_byte_bound_never_exceeded_unless_one_document_is_larger():
    sized = [(1, 1, 40), (2, 2, 40), (3, 3, 30), (4, 4, 500), (5, 5, 10), (6, 6, 90)]
    planned = chunks.split(sized, max_documents=100, max_bytes=100)
    assert planned == [[1, 2], [3], [4], [5, 6]]
    size = dict((i, b) for i, _, b in sized)
    for chunk in planned:
        assert sum(size[i] for i in chunk) <= 100 or len(chunk) == 1


def test_a_patient_stays_in_one_chunk_unless_too_large_for_one():
    sized = [(1, 1, 10), (2, 2, 10), (3, 2, 10), (4, 3, 10), (5, 3, 10), (6, 3, 10), (7, 3, 10), (8, 3, 10)]
    # patient 2 would straddle the first chunk's end: it starts a new one; patient 3 (5 documents) is split
    assert chunks.split(sized, max_documents=2, max_bytes=10**9) == [[1], [2, 3], [4, 5], [6, 7], [8]]
    assert chunks.split([], max_documents=2, max_bytes=10) == []
    with pytest.raises(ValueError):
        chunks.split(sized, max_documents=0, max_bytes=10)


def test_union_of_chunk_results():
    assert chunks.union([[3, 1], None, [], [2, 3]]) == [1, 2, 3]


@pytest.fixture
def seeded(fresh_dsn):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=6, days=3, seed=4, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        yield fresh_dsn, conn, extract.extract(conn, GKB, None, None)


def test_plan_reads_sizes_from_the_store(seeded):
    _dsn, conn, ids = seeded
    sizes = {r[0]: r[1] for r in conn.execute(
        "SELECT l.id, octet_length(d.cda) FROM iemk.ledger l JOIN mis.semd_document d ON d.id = l.document_id")}
    budget = max(sizes.values()) * 2
    planned = chunks.plan(conn, ids + [10**9], max_documents=3, max_bytes=budget)    # an unknown id is left out
    assert sorted(i for c in planned for i in c) == sorted(ids) and len(planned) > 1
    assert all(len(c) <= 3 and sum(sizes[i] for i in c) <= budget for c in planned)
    assert chunks.plan(conn, [], max_documents=3, max_bytes=budget) == []


def test_two_concurrent_sends_of_the_same_documents_post_each_once(seeded, dev_keys, flk_packs):
    """Two chunks (or two overlapping runs) given the same ids at once: the row lock (FOR UPDATE SKIP LOCKED,
    held across each document's POST) lets exactly one of them send each document."""
    dsn, conn, ids = seeded
    slow = FaultProfile.load('{"seed": 1, "operations": {"iti41": {"slow": 1.0, "latency_ms": [30, 60]}}}')
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05, faults=slow), dsn) as emulator, \
            CallbackServer(dsn) as callback:
        cfg = dataclasses.replace(settings.load(), callback_url=callback.url)
        valid = validate.validate(conn, ids, cfg)
        assert len(valid) >= 6
        reports: list[send.SendReport] = []
        start = threading.Barrier(2)

        def one_sender() -> None:
            with client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id=cfg.client_entity_id,
                                   signer=keys.load_signer(*dev_keys), timeout=5) as iemk:
                start.wait()
                reports.append(send.send(dsn, valid, cfg, iemk, patients_first=False))

        threads = [threading.Thread(target=one_sender) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stats = emulator.emulator.stats()
    assert len(reports) == 2
    assert sorted(reports[0].called + reports[1].called) == sorted(valid)      # each sent by exactly one sender
    assert reports[0].called and reports[1].called, "the two senders did not overlap"
    assert stats["received"] == len(valid) and stats["duplicate_deliveries"] == 0
