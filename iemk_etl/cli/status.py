"""`iemk-etl status` (documents by status and МО, or one document) and `reconcile` (ИЭМК against the ledger)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from iemk_etl import periods
from iemk_etl.cli.common import Subparsers, check_period, connect, date, iemk_client, mo_code
from iemk_etl.settings import Settings
from iemk_etl.store import ledger
from iemk_etl.store.mis import documents


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.pipeline import report

    _, conn = connect(settings)
    with conn:
        if args.document is not None:
            return print_document(conn, args.document, args.refresh)
        if args.start and args.end:
            check_period(args.start, args.end)
        if args.by != "mo":
            return print_by(conn, args, settings)
        start, end = periods.open_day_bounds(args.start, args.end, settings.timezone)
        frame = report.documents(conn, args.mo, start, end)
        quarantine = report.quarantined(conn)
    sys.stdout.write(report.render(frame, args.format, quarantine))
    return 0


def print_by(conn: psycopg.Connection, args: argparse.Namespace, settings: Settings) -> int:
    """Documents of the period per kind or per local day, and status (the МО given, or all together)."""
    from iemk_etl.pipeline import period_report

    mo = mo_code(conn, args.mo)[0] if args.mo else None
    table = period_report.status_by(conn, period_report.Period(args.start, args.end, mo, settings.timezone), args.by)
    sys.stdout.write(period_report.render_by(table, args.format))
    return 0


def print_document(conn: psycopg.Connection, document_id: int, refresh: bool) -> int:
    """Where one document stands, with its ledger rows; «Обновить» (``refresh``) re-reads its answers first."""
    from iemk_etl.pipeline import replies

    mo = documents.mo_of_document(conn, document_id)
    if mo is not None and refresh:
        replies.write_back(conn, mo[0], ledger.ids_of_document(conn, document_id))
    shown = documents.header(conn, document_id) if mo is not None else None
    if shown is None:
        raise SystemExit(f"документ {document_id} не найден в mis.semd_document")
    print(f"документ {document_id} ({shown.local_uid}, версия {shown.version}): {shown.status}")
    for row in ledger.history(conn, document_id):
        print(f"  ledger: {row.state}, попыток {row.attempts}, MessageID {row.message_id or '—'}, "
              f"передан {row.last_sent_at or '—'}, ответ {row.replied_at or '—'}"
              + (f", ошибка: {row.last_error}" if row.last_error else ""))
    return 0


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.pipeline import reconcile

    dsn, conn = connect(settings)
    start, end = periods.open_day_bounds(args.start, args.end, settings.timezone)
    with conn:
        oid, code = mo_code(conn, args.mo)
        with iemk_client(settings, dsn, code) as iemk:
            frame = reconcile.reconcile(conn, iemk, settings, oid, start, end,  # type: ignore[arg-type]
                                        repair=not args.report_only)
    out = Path(args.csv or settings.home / "reports" / f"reconcile-{code}-{args.start}-{args.end}.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    print(frame.to_string(index=False) if not frame.empty else "расхождений нет")
    print(f"CSV: {out}")
    return 0


def register(sub: Subparsers) -> None:
    sp = sub.add_parser("status", help="documents by status and МО, or one document")
    sp.add_argument("--mo")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sp.add_argument("--from", dest="start", type=date, help="documents created from this day, inclusive")
    sp.add_argument("--to", dest="end", type=date, help="documents created up to this day, inclusive")
    sp.add_argument("--by", choices=("mo", "kind", "day"), default="mo",
                    help="group by МО (default), СЭМД kind or local day; csv/json for kind and day: "
                         "kind|day,status,documents")
    sp.add_argument("--document", type=int, help="one МИС document id")
    sp.add_argument("--refresh", action="store_true", help="with --document: re-read its answers first («Обновить»)")
    sp.set_defaults(func=cmd_status)

    rc = sub.add_parser("reconcile", help="compare what ИЭМК holds for a period with the ledger, and repair")
    rc.add_argument("--mo", required=True)
    rc.add_argument("--from", dest="start", type=date, required=True)
    rc.add_argument("--to", dest="end", type=date, required=True)
    rc.add_argument("--csv", help="where to write the findings (default under IEMK_HOME/reports)")
    rc.add_argument("--report-only", action="store_true", help="change nothing, only report")
    rc.set_defaults(func=cmd_reconcile)
