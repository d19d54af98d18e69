"""Documents per second the exporter's send step delivers to the emulator (ITI-41, GOST-signed), to compare with
what the emulator sustains (bench_emulator.py): the emulator must not be the exporter's bottleneck.

Run: .venv/bin/python benchmarks/bench_export_send.py [--patients 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from iemk_etl import settings
from iemk_etl.devtools import demo_data
from iemk_etl.pipeline import extract, send, validate
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import db, embedded_pg, integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_process import emulator_process  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--patients", type=int, default=300)
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="iemk-bench-send-"))
    dsn = embedded_pg.start(home)
    db.migrate(dsn)
    cfg = dataclasses.replace(settings.load(), home=home, keys_dir=home / "keys", mo_config_path=home / "mo.json")
    oid = demo_data.DEMO_MO[0][0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=args.patients, days=1, seed=1, end=dt.date(2026, 11, 2), fail_share=0,
                       unsigned_share=0, store=KeyStore(cfg))
        integration.set_enabled(conn, oid, True)
        ids = validate.validate(conn, extract.extract(conn, oid, None, None), cfg)
    try:
        with emulator_process(dsn, home) as url:
            with CallbackServer(dsn) as callback:
                run = dataclasses.replace(cfg.with_iemk_url(url), callback_url=callback.url)
                with client.client_for_mo(run, "gkb7801") as iemk:
                    started = time.perf_counter()
                    report = send.send(dsn, ids, run, iemk, patients_first=False)  # documents only
                    elapsed = time.perf_counter() - started
        print(f"exporter send step: {report.accepted_now} documents in {elapsed:.1f} s = "
              f"{report.accepted_now / elapsed:.0f} documents/s (one МО, one task, sequential)")
    finally:
        embedded_pg.stop(home)


if __name__ == "__main__":
    main()
