"""Replies per second the ИЭМК emulator delivers to the callback receiver (the tail of a night: everything sent,
the asynchronous answers still going out).

Run: .venv/bin/python benchmarks/bench_reply_delivery.py [--replies 2000] [--threads 1,4]

An embedded PostgreSQL in a temporary folder holds both sides, as in the demo and the region benchmark: the
emulator's schema and the project's (``iemk.inbox``). Before the clock starts, ``--replies`` ITI-41 submissions are
recorded the way the emulator records an accepted one (``Store.accept_submission``: a pending reply, due now), each a
real outpatient epicrisis (cda_factory), and their MessageIDs are recorded as sent (``iemk.sent_message``) so the
callback stores every reply in its inbox, the real path, not the quarantine. Then the emulator (its ФЛК off: no packs,
no Schematron, as in the region benchmark; the registry rules and the document's registration run) and the callback
receiver start as in-process servers, and the clock runs until the callback has stored every reply. Each setting of
``--threads`` (IEMK_EMULATOR_REPLY_THREADS) runs on a cleared state, once unreported first to warm up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from iemk_etl.emulator.server import EmulatorServer  # noqa: E402
from iemk_etl.emulator.service import EmulatorConfig  # noqa: E402
from iemk_etl.emulator.store import Store, Submission  # noqa: E402
from iemk_etl.protocol.xds import submit  # noqa: E402
from iemk_etl.semd.header import unique_id  # noqa: E402
from iemk_etl.store import db, embedded_pg  # noqa: E402
from iemk_etl.transport.callback import CallbackServer  # noqa: E402

from cda_factory import MO, document  # noqa: E402

PATIENT = f"P-1^^^&{MO.oid}&ISO"
AUTHOR = "11223344595^Петрова^Анна^Сергеевна"


def _config(threads: int) -> EmulatorConfig:
    extra = {"reply_threads": threads} if "reply_threads" in EmulatorConfig.__dataclass_fields__ else {}
    if threads > 1 and not extra:
        raise SystemExit("this emulator has one delivery thread: run with --threads 1")
    return EmulatorConfig(logical_control=False, reply_delay=0, **extra)


def _prepare(dsn: str, docs: list[tuple[str, bytes]], reply_to: str, run: str) -> None:
    """A cleared state, then one pending reply per document, due now, and its MessageID recorded as ours."""
    store = Store(dsn)
    store.reset()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE iemk.inbox, iemk.reply_quarantine, iemk.audit_exchange, iemk.sent_message")
    ids = [f"urn:uuid:{run}-{n}" for n in range(len(docs))]
    for message_id, (uid, data) in zip(ids, docs, strict=True):
        store.accept_submission(Submission(message_id, reply_to, uid, PATIENT, 42, AUTHOR, data), "bench",
                                submit.ACTION, 0)
    store.close()
    with psycopg.connect(dsn) as conn:
        # sent_message refers to a ledger row; the benchmark has none, so this session skips the foreign key check.
        conn.execute("SET session_replication_role = replica")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO iemk.sent_message (message_id, ledger_id) VALUES (%s, 0)",
                            [(m,) for m in ids])


def _stored(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM iemk.inbox").fetchone()[0]  # type: ignore[index]


def _run(dsn: str, docs: list[tuple[str, bytes]], threads: int, run: str, timeout: float) -> tuple[float, dict]:
    with CallbackServer(dsn) as callback:
        _prepare(dsn, docs, callback.url, run)
        emulator = EmulatorServer(_config(threads), dsn)   # migrations checked before the clock starts
        started = time.perf_counter()
        emulator.start()
        try:
            deadline = started + timeout
            while _stored(dsn) < len(docs):
                if time.perf_counter() > deadline:
                    raise SystemExit(f"timeout: {_stored(dsn)} of {len(docs)} stored; {emulator.emulator.stats()}")
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            stats = emulator.emulator.stats()
        finally:
            emulator.stop()
    return len(docs) / elapsed, stats


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--replies", type=int, default=2000)
    p.add_argument("--threads", default="1,4", help="delivery thread counts to measure, comma-separated")
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    home = Path(tempfile.mkdtemp(prefix="iemk-bench-replies-"))
    dsn = embedded_pg.start(home)
    try:
        db.migrate(dsn)
        uids = [f"R-{n}" for n in range(args.replies)]
        docs = [(unique_id(MO.oid, u), document(local_uid=u)) for u in uids]
        print(f"{args.replies} replies, emulator and callback in one process, embedded PostgreSQL")
        _run(dsn, docs[: max(50, args.replies // 10)], counts[0], "warm", args.timeout)
        for threads in counts:
            rate, stats = _run(dsn, docs, threads, f"t{threads}", args.timeout)
            print(f"{threads} delivery thread(s): {rate:7.1f} replies/s   (delivered {stats['replies_delivered']},"
                  f" stored in the registry {stats['stored']}, refused {stats['failure']})")
    finally:
        embedded_pg.stop(home)


if __name__ == "__main__":
    main()
