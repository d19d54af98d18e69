"""Documents per second the exporter's send step delivers to the emulator (ITI-41, GOST-signed), to compare with
what the emulator sustains (bench_emulator.py): the emulator must not be the exporter's bottleneck.

Run: .venv/bin/python benchmarks/bench_export_send.py [--patients 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from iemk_etl import db, demo_data, embedded_pg, export, integration, settings
from iemk_etl.callback import CallbackServer
from iemk_etl.emulator.server import STATS_PATH
from iemk_etl.keystore import KeyStore


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--patients", type=int, default=300)
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="iemk-bench-send-"))
    dsn = embedded_pg.start(home)
    db.migrate(dsn)
    cfg = dataclasses.replace(settings.load(), home=home, keys_dir=home / "keys")
    oid = demo_data.DEMO_MO[0][0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=args.patients, days=1, seed=1, end=dt.date(2026, 11, 2), fail_share=0,
                       unsigned_share=0, store=KeyStore(cfg))
        integration.set_enabled(conn, oid, True)
        ids = export.validate(conn, export.extract(conn, oid, None, None), cfg)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emulator = subprocess.Popen([str(Path(sys.executable).parent / "iemk-etl"), "emulator", "serve", "--port",
                                 str(port), "--reply-delay", "0"], env={**os.environ, "IEMK_EMULATOR_DSN": dsn,
                                                                        "IEMK_HOME": str(home)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(url + STATS_PATH, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        from iemk_airflow import resources

        with CallbackServer(dsn) as callback:
            run = dataclasses.replace(cfg, iemk_url=url, callback_url=callback.url)
            with resources.iemk_client(run, "gkb7801") as iemk:
                started = time.perf_counter()
                report = export.send(dsn, ids, run, iemk, patients_first=False)  # documents only
                elapsed = time.perf_counter() - started
        print(f"exporter send step: {report.accepted_now} documents in {elapsed:.1f} s = "
              f"{report.accepted_now / elapsed:.0f} documents/s (one МО, one task, sequential)")
    finally:
        emulator.terminate()
        emulator.wait(timeout=20)
        embedded_pg.stop(home)


if __name__ == "__main__":
    main()
