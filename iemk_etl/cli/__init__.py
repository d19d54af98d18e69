"""The `iemk-etl` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from iemk_etl import settings as settings_mod
from iemk_etl.cli import (
    audit,
    demo,
    documents,
    export,
    integration,
    nsi,
    packs,
    patients,
    report,
    requeue,
    servers,
    signing,
    status,
)
from iemk_etl.cli import db as db_commands
from iemk_etl.errors import IemkError

log = logging.getLogger("iemk_etl")

# The command groups, in the order `iemk-etl --help` lists them.
GROUPS = (db_commands, integration, export, requeue, status, report, audit, documents, packs, patients, signing,
          servers, nsi, demo)

# Errors a user can act on: one line on stderr and exit code 2, not a traceback.
_USER_ERRORS = (IemkError,)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="iemk-etl", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args, settings_mod.load())
    except _USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
