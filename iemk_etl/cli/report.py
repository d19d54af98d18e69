"""`iemk-etl report`: a period's documents as an XLSX workbook, CSV tables and PNG plots in one folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from iemk_etl.cli.common import Subparsers, check_period, connect, date
from iemk_etl.settings import Settings


def positive(value: str) -> int:
    """An argparse type: a whole number above zero."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {value!r}")
    return int(value)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.pipeline import report_files

    check_period(args.start, args.end)
    _, conn = connect(settings)
    with conn:
        files = report_files.write_report(conn, args.start, args.end, args.mo, Path(args.out),
                                          tz=settings.timezone, latest=args.latest)
    print(f"документов: {files.documents}, в ошибке: {files.errors}")
    for path in files.paths():
        print(path)
    return 0


def register(sub: Subparsers) -> None:
    rp = sub.add_parser("report", help="XLSX, CSV and PNG report of a period: by МО, kind, day, errors by who acts")
    rp.add_argument("--from", dest="start", type=date, required=True, help="first day (documents created), inclusive")
    rp.add_argument("--to", dest="end", type=date, required=True, help="last day, inclusive")
    rp.add_argument("--mo", help="one МО (OID or code); default every МО")
    rp.add_argument("--out", required=True, help="folder to write report.xlsx, *.csv and *.png into")
    rp.add_argument("--latest", type=positive, default=200, help="how many of the latest errors to list (default 200)")
    rp.set_defaults(func=cmd_report)
