"""Sign-and-send over a period (issue 14 item 8): forming (CDA from the МИС records), CAdES signing per document and
backend, and the whole `iemk-etl sign-and-send` run against the emulator (its own process, ФЛК off).

The demo seed fills both demo МО with unsigned documents of the same days: the first МО's are formed again (their
unsigned rows deleted first) and signed in this process, timed; the second МО's go through `iemk-etl sign-and-send`
(the DAG: form — nothing new —, sign, extract, validate, feed patients, send, wait for replies), timed as one run.
Our own validate step checks the pack's XSD if IEMK_SEMD_PACKS is set; Schematron off (IEMK_LOGICAL_CONTROL=0)
unless --logical-control.

Run: .venv/bin/python benchmarks/bench_sign_send.py [--patients 300 --days 1 | --documents N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime as dt
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from iemk_etl import kinds, periods, settings
from iemk_etl.devtools import demo_data
from iemk_etl.pipeline import forming, sign
from iemk_etl.signing import backend as gost_backend
from iemk_etl.signing import cades
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import db, embedded_pg, integration
from iemk_etl.transport.callback import CallbackServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_process import emulator_process  # noqa: E402

END = dt.date(2026, 11, 2)
CLIENT_ENTITY_ID = "17c74e63-dc38-438d-a27a-a1aa063ee7b8"  # the demo's test system; the emulator accepts any
DOCUMENTS_PER_PATIENT = 1.95    # what the demo generator makes of a patient, about (for --documents)


def _profiled(enabled: bool, label: str, fn):  # type: ignore[no-untyped-def]
    if not enabled:
        return fn()
    prof = cProfile.Profile()
    result = prof.runcall(fn)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
    print(f"--- profile: {label} ---\n{out.getvalue()}", file=sys.stderr)
    return result


def _cades_ms(conn: psycopg.Connection, store: KeyStore, oid: str, code: str, sample: int) -> dict[str, float]:
    """Median ms to sign one document (author, plus МО where the kind needs it) per backend, on signed CDAs."""
    rows = conn.execute("SELECT d.cda, d.kind_code, s.local_id FROM mis.semd_document d JOIN mis.staff s "
                        "ON s.id = d.author_id WHERE d.mo_oid = %s AND d.cda IS NOT NULL AND length(d.cda) > 0 "
                        "ORDER BY d.id LIMIT %s", (oid, sample)).fetchall()
    result: dict[str, float] = {}
    for name in gost_backend.available_backends():
        backend_store = KeyStore(dataclasses.replace(store.settings, gost_backend=name))
        samples = []
        for cda, kind_code, local_id in rows[: sample if name == "openssl" else max(3, sample // 10)]:
            started = time.perf_counter()
            author = backend_store.staff_signer(code, local_id)
            org = backend_store.org_signer(code) if kinds.get(kind_code).requires_org_signature else None
            cades.sign_document(bytes(cda), kind_code, author, org)
            samples.append(time.perf_counter() - started)
        result[name] = statistics.median(samples) * 1000
    return result


def _sign_and_send(home: Path, dsn: str, code: str, first: dt.date, last: dt.date, logical: bool) -> float:
    with emulator_process(dsn, home) as url, CallbackServer(dsn) as callback:
        env = {"IEMK_CLIENT_ENTITY_ID": CLIENT_ENTITY_ID, "IEMK_TASK_RETRY_SECONDS": "2", **os.environ,
               "IEMK_HOME": str(home), "IEMK_SOURCE_DSN": dsn, "IEMK_URL": url, "IEMK_CALLBACK_URL": callback.url,
               "IEMK_REPLY_POKE_SECONDS": "1", "IEMK_LOGICAL_CONTROL": "1" if logical else "0"}
        started = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).parent / "iemk-etl"), "sign-and-send", "--mo", code,
                               "--from", first.isoformat(), "--to", last.isoformat()], env=env,
                              capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
    # The run's own output (Airflow's task log lines with their times) stays beside the data, for a look.
    (home / "sign-and-send.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
        raise RuntimeError("sign-and-send failed (its output above)")
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--patients", type=int, default=300)
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--documents", type=int, help="about this many documents a МО (sets --patients: both demo МО)")
    p.add_argument("--sample", type=int, default=60, help="documents for the per-backend CAdES timing")
    p.add_argument("--profile", action="store_true", help="cProfile forming and signing (to stderr)")
    p.add_argument("--no-send", action="store_true", help="skip the whole sign-and-send run")
    p.add_argument("--logical-control", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (data, the run's log)")
    args = p.parse_args()
    patients = args.patients if args.documents is None else max(2, round(2 * args.documents / DOCUMENTS_PER_PATIENT))
    home = Path(tempfile.mkdtemp(prefix="iemk-bench-sign-"))
    dsn = embedded_pg.start(home)
    db.migrate(dsn)
    cfg = dataclasses.replace(settings.load(), home=home, keys_dir=home / "keys", mo_config_path=home / "mo.json")
    store = KeyStore(cfg)
    (oid, code, *_), (oid2, code2, *_) = demo_data.DEMO_MO
    first, last = END - dt.timedelta(days=args.days), END - dt.timedelta(days=1)
    start, end = periods.day_start(first, cfg.timezone), periods.day_start(END, cfg.timezone)
    row: dict[str, object] = {"date": dt.date.today().isoformat(), "cores": os.cpu_count(),
                              "backend": store.backend.name, "patients": patients, "days": args.days}
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            seeded = demo_data.seed(conn, patients=patients, days=args.days, seed=1, end=END, fail_share=0,
                                    unsigned_share=1.0, store=store, tz=cfg.timezone)
            row["seeded_documents"] = seeded.documents
            conn.execute("DELETE FROM mis.semd_document WHERE mo_oid = %s AND signed_at IS NULL", (oid,))
            started = time.perf_counter()
            formed = _profiled(args.profile, "forming",
                               lambda: forming.form_period(conn, oid, start, end, mis_number=cfg.mis_number))
            forming_s = time.perf_counter() - started
            started = time.perf_counter()
            signed = _profiled(args.profile, "signing", lambda: sign.sign_period(conn, KeyStore(cfg), oid, start, end))
            signing_s = time.perf_counter() - started
            n = formed.total
            row.update({"documents": n, "forming_s": round(forming_s, 2), "forming_per_s": round(n / forming_s, 1),
                        "signed": len(signed.signed), "signing_s": round(signing_s, 2),
                        "signing_per_s": round(len(signed.signed) / signing_s, 1),
                        "form_sign_per_s": round(n / (forming_s + signing_s), 1)})
            row["cades_ms"] = {k: round(v, 2) for k, v in _cades_ms(conn, store, oid, code, args.sample).items()}
            if not args.no_send:
                integration.set_enabled(conn, oid2, True)
                unsigned = conn.execute("SELECT count(*) FROM mis.semd_document WHERE mo_oid = %s AND "
                                        "signed_at IS NULL AND length(cda) > 0", (oid2,)).fetchone()[0]
                enabled = subprocess.run([str(Path(sys.executable).parent / "iemk-etl"), "integration", "enable",
                                          "--mo", code2], env={**os.environ, "IEMK_HOME": str(home),
                                                               "IEMK_SOURCE_DSN": dsn},
                                         capture_output=True, text=True, check=False)
                if enabled.returncode != 0:
                    raise SystemExit(enabled.stderr)
                try:
                    elapsed = _sign_and_send(home, dsn, code2, first, last, args.logical_control)
                except RuntimeError as exc:
                    print(exc, file=sys.stderr)
                    elapsed = float("nan")
                stored = conn.execute("SELECT count(*) FROM mis.semd_document WHERE mo_oid = %s AND "
                                      "status = 'Сохранен в ИЭМК'", (oid2,)).fetchone()[0]
                row.update({"sign_and_send_documents": unsigned, "sign_and_send_stored": stored,
                            "sign_and_send_s": round(elapsed, 1),
                            "sign_and_send_per_s": round(unsigned / elapsed, 1)})
    finally:
        embedded_pg.stop(home)
        if args.keep:
            print(f"kept: {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    print("| stage | documents | s | documents/s |\n|---|---|---|---|")
    print(f"| forming | {row['documents']} | {row['forming_s']} | {row['forming_per_s']} |")
    print(f"| signing (sign_period, {row['backend']}) | {row['signed']} | {row['signing_s']} | "
          f"{row['signing_per_s']} |")
    print(f"| forming + signing | {row['documents']} | {round(forming_s + signing_s, 2)} | "
          f"{row['form_sign_per_s']} |")
    if "sign_and_send_s" in row:
        print(f"| sign-and-send, whole DAG (stored {row['sign_and_send_stored']}) | {row['sign_and_send_documents']} "
              f"| {row['sign_and_send_s']} | {row['sign_and_send_per_s']} |")
    for name, ms in row["cades_ms"].items():  # type: ignore[attr-defined]
        print(f"CAdES per document ({name}): {ms} ms")
    print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
