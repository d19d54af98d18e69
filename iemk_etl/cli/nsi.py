"""`iemk-etl nsi`: НСИ dictionaries in the database — load from files, sync from ФНСИ, list what is held."""

from __future__ import annotations

import argparse
from pathlib import Path

from iemk_etl.cli.common import Subparsers, connect
from iemk_etl.nsi.fnsi import FnsiClient
from iemk_etl.pipeline import nsi
from iemk_etl.settings import Settings, SettingsError
from iemk_etl.store import nsi as store


def _print(result: nsi.LoadResult) -> None:
    for oid, version in result.loaded:
        print(f"loaded    {oid} v{version}")
    for oid, version in result.unchanged:
        print(f"unchanged {oid} v{version}")


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    _, conn = connect(settings)
    with conn:
        for path in args.paths:
            _print(nsi.load_path(conn, path))
    return 0


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.fnsi_user_key:
        raise SettingsError("IEMK_FNSI_USER_KEY", None, "нужен ключ пользователя ФНСИ (профиль на nsi.rosminzdrav.ru)")
    _, conn = connect(settings)
    with conn, FnsiClient(settings.fnsi_url, settings.fnsi_user_key, timeout=settings.http_timeout) as client:
        result = nsi.sync(conn, client, args.oid or None)
    _print(result)
    for oid, why in result.missing.items():
        print(f"missing   {oid}: {why}")
    return 1 if result.missing and args.strict else 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    _, conn = connect(settings)
    with conn:
        for h in store.held(conn):
            print(f"{h.oid}\tv{h.version}\t{h.rows_count} rows\t{h.name}\t{h.source}")
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("nsi", help="НСИ dictionaries: load files, sync from ФНСИ, list").add_subparsers(
        dest="nsi_command", required=True)
    load = p.add_parser("load", help="load dictionary files (ФНСИ JSON answers or CSV exports): FILE or DIR")
    load.add_argument("paths", nargs="+", type=Path)
    load.set_defaults(func=cmd_load)
    sync = p.add_parser("sync", help="download the newest and the cited version of each dictionary from ФНСИ "
                                     "(IEMK_FNSI_URL, IEMK_FNSI_USER_KEY); held versions are not downloaded again")
    sync.add_argument("--oid", action="append", default=[], help="a dictionary OID (repeat; default: the OIDs the "
                                                                  "builders cite)")
    sync.add_argument("--strict", action="store_true", help="exit 1 when a dictionary or a cited version is missing")
    sync.set_defaults(func=cmd_sync)
    p.add_parser("list", help="the dictionary versions held").set_defaults(func=cmd_list)
