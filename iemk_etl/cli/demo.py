"""`iemk-etl demo`: set everything up (it migrates: a setup command) and export a period on the embedded defaults."""

from __future__ import annotations

import argparse

from iemk_etl.cli.common import Subparsers
from iemk_etl.settings import Settings


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.devtools import demo

    return demo.run(settings, patients=args.patients, days=args.days, seed=args.seed)


def register(sub: Subparsers) -> None:
    dp = sub.add_parser("demo", help="set everything up and export a 3-day period on the embedded defaults")
    dp.add_argument("--patients", type=int, default=40)
    dp.add_argument("--days", type=int, default=3)
    dp.add_argument("--seed", type=int, default=42)
    dp.set_defaults(func=cmd_demo)
