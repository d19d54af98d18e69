"""`iemk-etl integration`: the per-МО switch of external system fed_iemk, with the request certificate's state."""

from __future__ import annotations

import argparse

from iemk_etl import settings as settings_mod
from iemk_etl.cli.common import Subparsers, connect
from iemk_etl.settings import Settings
from iemk_etl.signing.keys import KeyMaterialError
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import integration


def cmd_integration(args: argparse.Namespace, settings: Settings) -> int:
    _, conn = connect(settings)
    with conn:
        if args.action in ("enable", "disable"):
            if not args.mo:
                raise SystemExit("--mo is required to enable or disable the integration")
            state = integration.set_enabled(conn, args.mo, args.action == "enable")
            integration.remember_mo(settings.mo_config_path, integration.MoEntry(state.oid, state.code, state.name))
            rows = [state]
        else:
            rows = integration.status(conn, args.mo)
    store = KeyStore(settings)
    for row in rows:
        print(f"{row.code:<10} {row.oid:<34} {settings_mod.EXTERNAL_SYSTEM}  {row.shown}  {row.name}")
        print(f"           сертификат ЭП запросов: {_certificate_line(store, row.code, settings.cert_warn_days)}")
    return 0


def _certificate_line(store: KeyStore, mo_code: str, warn_days: int) -> str:
    from iemk_etl.signing import keys

    try:
        der = store.request_certificate(mo_code)
    except KeyMaterialError as exc:
        return f"не читается: {exc}"
    return keys.certificate_info(der).describe(warn_days) if der else "не настроен"


def register(sub: Subparsers) -> None:
    ip = sub.add_parser("integration", help="the per-МО switch of external system fed_iemk")
    ip.add_argument("action", choices=("enable", "disable", "status"))
    ip.add_argument("--mo", help="МО OID or short code")
    ip.set_defaults(func=cmd_integration)
