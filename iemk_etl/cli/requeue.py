"""`iemk-etl requeue`: send chosen ended documents again in a new round (a new MessageID, the ladder afresh)."""

from __future__ import annotations

import argparse

from iemk_etl import periods
from iemk_etl.cli.common import Subparsers, connect, date, mo_code
from iemk_etl.pipeline import retry
from iemk_etl.settings import Settings


def cmd_requeue(args: argparse.Namespace, settings: Settings) -> int:
    if (args.start is None) != (args.end is None):
        raise SystemExit("--from and --to go together")
    if args.start is not None and args.end < args.start:
        raise SystemExit("--to must not be before --from")
    start, end = periods.open_day_bounds(args.start, args.end, settings.timezone)
    _, conn = connect(settings)
    with conn:
        oid, _ = mo_code(conn, args.mo)
        chosen = retry.requeue(conn, oid, args.state or ["failed"], code=args.code, start=start, end=end,
                               dry_run=args.dry_run)
    verb = "would be sent again (dry run, nothing changed)" if args.dry_run else "sent again in a new round"
    print(f"{len(chosen)} documents {verb}" + (f": ledger ids {', '.join(map(str, chosen))}" if chosen else ""))
    return 0


def register(sub: Subparsers) -> None:
    rq = sub.add_parser("requeue", help="send chosen ended documents (failed, rejected) again in a new round")
    rq.add_argument("--mo", required=True, help="МО OID or code")
    rq.add_argument("--state", action="append", choices=[s.value for s in retry.REQUEUABLE],
                    help="ended state to send again (repeat; default: failed)")
    rq.add_argument("--code", help="only documents ended with this error code (iemk_etl/errors.py)")
    rq.add_argument("--from", dest="start", type=date, help="first day signed, inclusive")
    rq.add_argument("--to", dest="end", type=date, help="last day signed, inclusive")
    rq.add_argument("--dry-run", action="store_true", help="list what would go, change nothing")
    rq.set_defaults(func=cmd_requeue)
