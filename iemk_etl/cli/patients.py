"""`iemk-etl patients`: patients in ИЭМК (PDQ)."""

from __future__ import annotations

import argparse

from iemk_etl.cli.common import Subparsers, date, mo_client
from iemk_etl.settings import Settings


def cmd_patients_search(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.pipeline import queries
    from iemk_etl.protocol.hl7v3 import pdq

    oid, iemk = mo_client(settings, args.mo)
    query = pdq.PatientQuery(local_id=(oid, args.local_id) if args.local_id else None, snils=args.snils,
                               family=args.family, given=args.given,
                               birth_date=args.birth.strftime("%Y%m%d") if args.birth else None)
    with iemk:
        found = queries.search_patients(iemk, settings, query)
    for p in found:
        print(f"{p.mo_oid} {p.local_id}: {p.family or ''} {p.given or ''} {p.patronymic or ''}, "
              f"{p.birth_time or '—'}, СНИЛС {p.snils or '—'}")
    print(f"найдено: {len(found)}")
    return 0


def register(sub: Subparsers) -> None:
    pp = sub.add_parser("patients", help="patients in ИЭМК").add_subparsers(dest="patients_command", required=True)
    ps = pp.add_parser("search", help="PDQ: find patients in ИЭМК")
    ps.add_argument("--mo", required=True)
    ps.add_argument("--local-id")
    ps.add_argument("--snils")
    ps.add_argument("--family")
    ps.add_argument("--given")
    ps.add_argument("--birth", type=date)
    ps.set_defaults(func=cmd_patients_search)
