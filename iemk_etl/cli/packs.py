"""`iemk-etl packs install|list`: the official СЭМД packs, installed and recorded like dictionaries."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from iemk_etl.cli.common import Subparsers
from iemk_etl.settings import Settings


def _installed_dir(settings: Settings) -> Path:
    assert settings.installed_packs_dir is not None   # noqa: S101 - load() always sets it
    return settings.installed_packs_dir


def cmd_packs_install(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.flk import install

    for done in install.install(Path(args.source), _installed_dir(settings), kind=args.kind, edition=args.edition):
        e = done.entry
        schematron = e["schematron"] or "нет"
        print(f"пакет {e['kind']} ред. {e['edition']} ({e['sha256'][:12]}): {done.status}; XSD {e['xsd']}, "
              f"Schematron {schematron}, файлов {e['files']}")
        for note in done.notes:
            print(f"  внимание: {note}")
    return 0


def cmd_packs_list(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.flk import install

    rows = install.listing(settings.installed_packs_dir, settings.packs_dir)
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("пакетов нет: установите `iemk-etl packs install ZIP|DIR` или задайте IEMK_SEMD_PACKS")
        return 0
    header = ("", "вид", "ред.", "хеш", "где", "файлов", "XSD", "Schematron", "источник")
    table = [header] + [("*" if r["active"] else "", str(r["kind"]), str(r["edition"] or "?"), r["sha256"][:12],
                         r["where"], str(r["files"]), r["xsd"], r["schematron"] or "—", r["source"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    print("* — пакет, который ФЛК применяет к виду")
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("packs", help="the official СЭМД packs (XSD + Schematron): install, list")
    cmds = p.add_subparsers(dest="packs_command", required=True)
    ins = cmds.add_parser("install", help="install a pack as the Ministry publishes it (ZIP or folder), checked")
    ins.add_argument("source", help="a ZIP (the GitLab archive of a kind's edition) or a folder")
    ins.add_argument("--kind", type=int, help="НСИ 1520 kind code, when it cannot be told from the pack")
    ins.add_argument("--edition", type=int, help="edition (Редакция N), when it cannot be told from the pack")
    ins.set_defaults(func=cmd_packs_install)
    ls = cmds.add_parser("list", help="the packs ФЛК can use: installed (IEMK_PACKS_DIR) and IEMK_SEMD_PACKS")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    ls.set_defaults(func=cmd_packs_list)
