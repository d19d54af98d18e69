"""`iemk-etl db`: the schema (the only command that migrates), demo data, the embedded server."""

from __future__ import annotations

import argparse

from iemk_etl.cli.common import Subparsers, connect_migrated, date
from iemk_etl.settings import Settings
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import db


def cmd_db_migrate(args: argparse.Namespace, settings: Settings) -> int:
    dsn = db.resolve_dsn(settings)
    applied = db.migrate(dsn)
    print(f"schema is up to date ({', '.join(applied) if applied else 'nothing to apply'})")
    return 0


def cmd_db_seed(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.devtools import demo_data

    _, conn = connect_migrated(settings)  # a setup command: it may create the schema it fills
    with conn:
        result = demo_data.seed(conn, patients=args.patients, days=args.days, seed=args.seed, end=args.end,
                                fail_share=args.fail_share, store=KeyStore(settings))
    print(f"seeded: {result.patients} patients, {result.documents} new documents ({result.signed} signed; "
          f"{result.bad_format} must fail format control, {result.bad_snils} have a patient with a bad СНИЛС)")
    return 0


def cmd_db_start(args: argparse.Namespace, settings: Settings) -> int:
    print(db.resolve_dsn(settings))
    return 0


def cmd_db_stop(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.store import embedded_pg

    print("stopped" if embedded_pg.stop(settings.home) else "not running")
    return 0


def register(sub: Subparsers) -> None:
    dbp = sub.add_parser("db", help="the database: schema, demo data, the embedded server").add_subparsers(
        dest="db_command", required=True)
    dbp.add_parser("migrate", aliases=["init"], help="create or migrate the schema").set_defaults(func=cmd_db_migrate)
    seed = dbp.add_parser("seed", help="generate demo МИС data (migrates the schema first)")
    seed.add_argument("--patients", type=int, default=40)
    seed.add_argument("--days", type=int, default=3, help="days of documents, ending the day before --end")
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--end", type=date, default=None, help="first day after the generated period (default today)")
    seed.add_argument("--fail-share", type=float, default=0.2, help="share of documents that must fail control")
    seed.set_defaults(func=cmd_db_seed)
    dbp.add_parser("start", help="start the embedded PostgreSQL and print its DSN").set_defaults(func=cmd_db_start)
    dbp.add_parser("stop", help="stop the embedded PostgreSQL").set_defaults(func=cmd_db_stop)
