"""`iemk-etl audit`: the archive of envelopes exchanged with ИЭМК (iemk.audit_exchange) — a document's exchange in
order, one envelope decompressed, the purge of old ones.

An operator's tool: ``--show`` prints an envelope with its content (patient data, the document) on request, to
stdout; nothing of it ever goes to a log."""

from __future__ import annotations

import argparse
import sys

from iemk_etl.cli.common import Subparsers, connect
from iemk_etl.settings import Settings
from iemk_etl.store import audit

_ARROW = {audit.OUT: "→ ИЭМК", audit.IN: "← ИЭМК"}


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    _, conn = connect(settings)
    with conn:
        if args.show is not None:
            raw = audit.body(conn, args.show)
            if raw is None:
                raise SystemExit(f"конверт {args.show} не найден в архиве обмена")
            sys.stdout.buffer.write(raw)
            sys.stdout.buffer.write(b"\n")
            return 0
        if args.purge:
            days = settings.audit_retention_days if args.days is None else args.days
            print(f"удалено конвертов старше {days} дн.: {audit.purge(conn, days)}")
            return 0
        rows = audit.of_document(conn, args.document)
    if not rows:
        print(f"в архиве обмена нет конвертов документа {args.document}")
        return 1
    for row in rows:
        print(render(row))
    return 0


def render(row: audit.Row) -> str:
    """One line per envelope: id, time, direction, kind, action, MessageID → RelatesTo, HTTP status, sizes, hash."""
    action = (row.action or "—").rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    ids = row.message_id or "—"
    if row.relates_to:
        ids += f" ↩ {row.relates_to}"
    http = f"HTTP {row.http_status}" if row.http_status is not None else "-"
    return (f"#{row.id:<6} {row.at.isoformat(timespec='milliseconds')}  {_ARROW.get(row.direction, row.direction)}"
            f"  {row.kind:<7} {action:<32} ledger {row.ledger_id or '—'}  {ids}  {http}"
            f"  {row.raw_size} B ({row.stored_size} B сжато)  sha256 {row.sha256}")


def register(sub: Subparsers) -> None:
    sp = sub.add_parser("audit", help="the archive of envelopes exchanged with ИЭМК: a document's exchange, one "
                                      "envelope, purge")
    what = sp.add_mutually_exclusive_group(required=True)
    what.add_argument("--document", type=int, help="МИС document id: its exchange in order")
    what.add_argument("--show", type=int, metavar="N", help="print envelope #N decompressed (its content included)")
    what.add_argument("--purge", action="store_true", help="delete envelopes older than IEMK_AUDIT_RETENTION_DAYS")
    sp.add_argument("--days", type=int, help="with --purge: this many days instead of IEMK_AUDIT_RETENTION_DAYS")
    sp.set_defaults(func=cmd_audit)
