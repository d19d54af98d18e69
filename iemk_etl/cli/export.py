"""`iemk-etl export`, `backfill`, `sign-and-send` (the DAGs over a period) and `send` (one document now)."""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from pathlib import Path

from iemk_etl import periods
from iemk_etl.cli.common import Subparsers, check_period, connect, date, iemk_client
from iemk_etl.cli.status import print_document
from iemk_etl.pipeline.dag_runs import run_export
from iemk_etl.settings import Settings
from iemk_etl.store import db, integration
from iemk_etl.store.mis import documents


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    check_period(args.start, args.end)
    return run_export(args.mo, args.start, args.end)


def cmd_sign_and_send(args: argparse.Namespace, settings: Settings) -> int:
    check_period(args.start, args.end)
    return run_export([args.mo], args.start, args.end, extra=["--sign-and-send", "--kinds", args.kinds])


def _airflow_executable() -> str:
    beside = Path(sys.executable).parent / "airflow"  # the same environment as this command
    return str(beside) if beside.exists() else "airflow"


def backfill_command(dag_id: str, start: dt.date, end: dt.date, tz: str, *, reprocess: str,
                     dry_run: bool) -> list[str]:
    """`airflow backfill create` for whole local days: the CLI reads bare dates as UTC, which would shift
    every Moscow day by three hours, so the bounds carry the DAG's UTC offset explicitly."""

    def bound(day: dt.date) -> str:
        return periods.day_start(day, tz).isoformat()

    command = [_airflow_executable(), "backfill", "create", "--dag-id", dag_id, "--from-date", bound(start),
               "--to-date", bound(end), "--max-active-runs", "1", "--reprocess-behavior", reprocess]
    return command + (["--dry-run"] if dry_run else [])


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    entries = [e for e in integration.read_mo_config(settings.mo_config_path) if args.mo in (e.oid, e.code)]
    if not entries:
        raise SystemExit(f"МО [{args.mo}] has no export DAG: run `iemk-etl integration enable --mo {args.mo}` first")
    command = backfill_command(entries[0].dag_id(), args.start, args.end, settings.timezone,
                               reprocess=args.reprocess, dry_run=args.dry_run)
    print(" ".join(command), flush=True)
    print("(the scheduler runs it; the DAG must be unpaused: `airflow dags unpause "
          f"{entries[0].dag_id()}`)", flush=True)
    return subprocess.run(command, check=False).returncode


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    """«Передать документ в ИЭМК»: one signed document now, waiting for ИЭМК's answer."""
    from iemk_etl.pipeline import deliver

    dsn, conn = connect(settings)
    with conn:
        mo = documents.mo_of_document(conn, args.document)
    if mo is None:
        raise SystemExit(f"документ {args.document} не найден в mis.semd_document")
    if not settings.callback_url:
        raise SystemExit("set IEMK_CALLBACK_URL: ИЭМК answers a document asynchronously there")
    mo_oid, mo_code = mo
    with iemk_client(settings, dsn, mo_code) as iemk:
        counts = deliver.deliver_now(dsn, mo_oid, [args.document], settings, iemk, wait_seconds=args.wait)
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    with db.connect(dsn) as conn2:
        return print_document(conn2, args.document, refresh=False)


def _period_arguments(parser: argparse.ArgumentParser, *, first: str = "first day, inclusive") -> None:
    parser.add_argument("--from", dest="start", type=date, required=True, help=first)
    parser.add_argument("--to", dest="end", type=date, required=True, help="last day, inclusive")


def register(sub: Subparsers) -> None:
    xp = sub.add_parser("export", help="export a period now, through the Airflow DAG, without a scheduler")
    xp.add_argument("--mo", action="append", required=True, help="МО OID or code (repeat, or 'all')")
    _period_arguments(xp)
    xp.set_defaults(func=cmd_export)

    bp = sub.add_parser("backfill", help="create a native Airflow backfill of whole days (needs a running scheduler)")
    bp.add_argument("--mo", required=True, help="МО OID or code")
    _period_arguments(bp)
    bp.add_argument("--reprocess", choices=("none", "failed", "completed"), default="none",
                    help="what to do with days that already have a run")
    bp.add_argument("--dry-run", action="store_true")
    bp.set_defaults(func=cmd_backfill)

    ss = sub.add_parser("sign-and-send", help="sign the unsigned documents of a period, then export them")
    ss.add_argument("--mo", required=True, help="МО OID or code")
    _period_arguments(ss, first="first day (document created), inclusive")
    ss.add_argument("--kinds", default="", help="НСИ 1520 kind codes, comma-separated (default: all)")
    ss.set_defaults(func=cmd_sign_and_send)

    sd = sub.add_parser("send", help="«Передать документ в ИЭМК»: one signed document now")
    sd.add_argument("--document", type=int, required=True, help="МИС document id")
    sd.add_argument("--wait", type=float, default=30.0, help="seconds to wait for ИЭМК's answer")
    sd.set_defaults(func=cmd_send)
