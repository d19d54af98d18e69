"""Peak memory of one big СЭМД through the exporter's validate and send steps, in this process (as an Airflow task
holds it), against the emulator as its own process (its ФЛК off, so its memory is not counted here).

Run: IEMK_SEMD_PACKS=/work/shared/semd-packs .venv/bin/python benchmarks/bench_big_document.py --mb 50 [--tracemalloc]

The document is built as bench_region.py's big ones: an outpatient visit with a scanned PDF report sized so the
СЭМД is ≈ N MB, formed and signed (CAdES) as the МИС does. Each step starts from a collected heap with the
kernel's peak-RSS mark reset (/proc/self/clear_refs "5") and freed heap returned (malloc_trim), so VmHWM after
it is that step's own peak (in the DAG, validate and send are tasks of their own, each its own process). Validate is
the full ФЛК (the pack's XSD, Schematron, НСИ control); send builds the ITI-41 envelope, signs it (WS-Security),
archives it (audit.Recorder, as the Airflow task's client does) and POSTs it. ``--tracemalloc`` adds each step's
traced Python peak and the top Python allocation sites still held at its end (native memory — libxml2, libpq,
Saxon — is not traced; tracing slows the steps and adds its own memory: a separate run).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import datetime as dt
import gc
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from iemk_etl import settings
from iemk_etl.devtools import demo_data
from iemk_etl.devtools.generate import scanned_pdf
from iemk_etl.pipeline import extract, forming, send, sign, validate
from iemk_etl.protocol import snils
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import audit, db, embedded_pg, integration
from iemk_etl.transport import client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_process import emulator_process  # noqa: E402

MB = 1_000_000
MIB = 2**20
END = dt.date(2026, 11, 2)
ZONE = dt.timezone(dt.timedelta(hours=3))


def _status(field: str) -> int:
    """A VmRSS/VmHWM line of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")      # Linux ≥ 4.0: VmHWM := VmRSS


def _big_document(conn: psycopg.Connection, cfg: Any, mo_oid: str, day: dt.date, mb: float) -> int:
    """One outpatient visit with a scanned report making a ≈ ``mb`` MB СЭМД, formed and signed; its МИС id."""
    patient_id, doctor_id = next(
        (p, s) for p, s, number in conn.execute(
            "SELECT p.id, s.id, p.snils FROM mis.patient p JOIN mis.staff s ON s.mo_oid = p.mo_oid"
            " WHERE p.mo_oid = %s AND p.address IS NOT NULL ORDER BY p.id, s.id", (mo_oid,))
        if number and snils.is_valid(number))
    at = dt.datetime.combine(day, dt.time(11, 0), ZONE)
    visit = conn.execute(
        "INSERT INTO mis.visit (mo_oid, patient_id, doctor_id, local_id, started_at, ended_at, conclusion)"
        " VALUES (%s, %s, %s, 'BIG-1', %s, %s, 'Здоров') RETURNING id",
        (mo_oid, patient_id, doctor_id, at, at + dt.timedelta(minutes=20))).fetchone()[0]
    conn.execute("INSERT INTO mis.diagnosis (visit_id, icd10, name) VALUES (%s, 'Z00.0', 'Общий медицинский осмотр')",
                 (visit,))
    conn.execute("INSERT INTO mis.report_template (visit_id, name, file_name, content, to_iemk, signed_at)"
                 " VALUES (%s, 'Протокол (скан)', 'scan.pdf', %s, true, %s)",
                 (visit, scanned_pdf(int(mb * MB * 3 / 4) - 60_000), at))
    bounds = (dt.datetime.combine(day, dt.time(), ZONE), dt.datetime.combine(day + dt.timedelta(days=1), dt.time(),
                                                                             ZONE))
    forming.form_period(conn, mo_oid, *bounds, mis_number=cfg.mis_number)
    sign.sign_period(conn, KeyStore(cfg), mo_oid, *bounds, None)
    document_id, size = conn.execute("SELECT id, length(cda) FROM mis.semd_document WHERE local_uid LIKE '%%BIG-1'"
                                     " AND status IS DISTINCT FROM 'draft'").fetchone()
    print(f"document {document_id}: {size / MB:.1f} MB (≈ {size / MIB:.1f} MiB)")
    return int(document_id)


def _trim() -> None:
    """Give freed heap back to the kernel (glibc), so a step starts as in a task process of its own would."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _measured(name: str, step: Callable[[], Any], trace: bool) -> tuple[Any, dict[str, Any]]:
    gc.collect()
    _trim()
    if trace:
        tracemalloc.start(5)
    _reset_peak()
    base = _status("VmRSS")
    started = time.perf_counter()
    value = step()
    elapsed = time.perf_counter() - started
    peak = _status("VmHWM")
    row = {"step": name, "s": elapsed, "rss_before": base, "peak": peak, "growth": peak - base}
    if trace:
        snapshot = tracemalloc.take_snapshot()
        row["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"\n{name}: top Python allocations still held at the step's end (traced peak "
              f"{row['traced_peak'] / MIB:.0f} MiB)")
        for stat in snapshot.statistics("traceback")[:6]:
            print(f"  {stat.size / MIB:8.1f} MiB  " + " <- ".join(
                f"{Path(f.filename).name}:{f.lineno}" for f in list(stat.traceback)[::-1][:4]))
    return value, row


def _settings(home: Path, logical: bool) -> Any:
    return dataclasses.replace(settings.load(), home=home, keys_dir=home / "keys", mo_config_path=home / "mo.json",
                               logical_control=logical)


def _step(name: str, dsn: str, home: Path, url: str, ids: list[int], logical: bool, trace: bool) -> dict[str, Any]:
    """One step in a fresh process (spawned: as the DAG's task process of that step), measured."""
    run = dataclasses.replace(_settings(home, logical).with_iemk_url(url), callback_url="http://127.0.0.1:9/unused",
                              client_entity_id="bench-big-document")
    if name == "validate":
        with psycopg.connect(dsn, autocommit=True) as conn:
            valid, row = _measured(name, lambda: validate.validate(conn, ids, run), trace)
            if valid != ids:
                states = conn.execute("SELECT state, error FROM iemk.ledger WHERE id = ANY(%s)", (ids,)).fetchall()
                raise SystemExit(f"the big document did not pass ФЛК: {states}")
        return row
    code = "gkb7801"
    with client.client_for_mo(run, code, observer=audit.Recorder(dsn, code)) as iemk:
        report, row = _measured(name, lambda: send.send(dsn, ids, run, iemk, patients_first=False), trace)
    if report.accepted_now != 1:
        raise SystemExit(f"the big document was not accepted: {report}")
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=float, default=50, help="the СЭМД's size, MB")
    p.add_argument("--tracemalloc", action="store_true")
    p.add_argument("--no-logical", action="store_true", help="ФЛК without the Schematron (XSD + НСИ control)")
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="iemk-bench-bigdoc-"))
    dsn = embedded_pg.start(home)
    try:
        db.migrate(dsn)
        # The limit as bench_region.py sets it for big documents, for this process, the steps' and the emulator's.
        os.environ["IEMK_MAX_MESSAGE_BYTES"] = str(max(64 * MIB, int(args.mb * MB * 1.45) + 4 * MIB))
        cfg = _settings(home, not args.no_logical)
        oid = demo_data.DEMO_MO[0][0]
        with psycopg.connect(dsn, autocommit=True) as conn:
            demo_data.seed(conn, patients=2, days=1, seed=1, end=END, fail_share=0, unsigned_share=0,
                           store=KeyStore(cfg))
            integration.set_enabled(conn, oid, True)
            document_id = _big_document(conn, cfg, oid, END + dt.timedelta(days=2), args.mb)
            ids = extract.extract_documents(conn, oid, [document_id])
        results: list[dict[str, Any]] = []
        with emulator_process(dsn, home) as url:
            for name in ("validate", "send"):
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    results.append(pool.submit(_step, name, dsn, home, url, ids, not args.no_logical,
                                               args.tracemalloc).result())
        size = conn_size(dsn, document_id)
        print(f"\none {size / MB:.1f} MB СЭМД, peak RSS by step, each step in a fresh process (MiB; ×: the step's "
              "growth over the document)")
        print("| step | RSS before | peak | growth | × document | s |")
        print("|---|---|---|---|---|---|")
        for r in results:
            print(f"| {r['step']} | {r['rss_before'] / MIB:.0f} | {r['peak'] / MIB:.0f} | {r['growth'] / MIB:.0f} | "
                  f"{r['growth'] / size:.1f} | {r['s']:.1f} |")
    finally:
        embedded_pg.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def conn_size(dsn: str, document_id: int) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT length(cda) FROM mis.semd_document WHERE id = %s", (document_id,)).fetchone()
        return int(row[0])


if __name__ == "__main__":
    main()
