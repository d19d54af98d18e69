"""`iemk-etl documents`: СЭМД here (build from the МИС, sample, validate) and in ИЭМК (list, show)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from iemk_etl import periods
from iemk_etl.cli.common import Subparsers, check_period, connect, date, iemk_client, kinds, mo_client, mo_code
from iemk_etl.settings import Settings
from iemk_etl.store import integration

if TYPE_CHECKING:
    import psycopg

    from iemk_etl.flk import nsi_control


def cmd_documents_list(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.pipeline import queries
    from iemk_etl.protocol.xds import query as xds_query
    from iemk_etl.protocol.xds.common import patient_cx

    oid, iemk = mo_client(settings, args.mo)
    start, end = periods.open_day_bounds(args.start, args.end, settings.timezone)
    query = xds_query.DocumentQuery(patient_id=patient_cx(args.patient, oid) if args.patient else None,
                              mo_oid=None if args.patient else oid, kind_code=args.kind, created_from=start,
                              created_to=end)
    with iemk:
        entries = queries.list_documents(iemk, settings, query)
    for e in entries:
        print(f"{e.unique_id}  вид {e.kind_code}  {e.creation_time or '—'}  {e.status.rsplit(':', 1)[-1]}  "
              f"пациент {e.patient_id.split('^', 1)[0]}")
    print(f"документов: {len(entries)}")
    return 0


def cmd_documents_validate(args: argparse.Namespace, settings: Settings) -> int:
    """ФЛК of files: format control, then logical control; every finding printed, exit 1 if there is one."""
    failed = False
    dictionaries, conn = _dictionaries(args, settings)
    try:
        for name in args.files:
            failed = _validate_file(args, settings, name, dictionaries) or failed
    finally:
        if conn is not None:
            conn.close()
    return 1 if failed else 0


def _dictionaries(args: argparse.Namespace, settings: Settings
                  ) -> tuple[nsi_control.DictionarySource | None, psycopg.Connection | None]:
    """НСИ control's source: the folder given (--nsi), else the database's dictionaries; without a database the
    control is skipped, said once on stderr (a file check must work on a machine with no iemk-etl database)."""
    from iemk_etl.flk import nsi_control

    if args.no_nsi:
        return None, None
    if args.nsi:
        return nsi_control.FolderSource(Path(args.nsi)), None
    from iemk_etl.pipeline import nsi

    try:
        _, conn = connect(settings)
    except Exception as exc:  # noqa: BLE001 - any reason the database is out of reach: say it, check the rest
        print(f"НСИ control skipped: the database is not available ({type(exc).__name__}); use --nsi DIR",
              file=sys.stderr)
        return None, None
    return nsi.StoreSource(conn), conn


def _validate_file(args: argparse.Namespace, settings: Settings, name: str,
                   dictionaries: nsi_control.DictionarySource | None) -> bool:
    """True when the file has findings (or its kind cannot be told)."""
    from iemk_etl.flk import validation

    data = Path(name).read_bytes()
    kind = args.kind if args.kind is not None else _kind_of(name, data)
    if kind is None:
        return True
    findings = validation.validate(kind, data, packs_dir=settings.pack_sources,
                                   require_packs=settings.require_packs, logical=not args.no_logic,
                                   nsi=dictionaries, require_nsi=settings.require_nsi)
    for f in findings:
        print(f"{name}: [{f.stage} {f.rule}] {f.message}" + (f" ({f.location})" if f.location else "")
              + (f" [пакет {f.pack}]" if f.pack else ""))
    print(f"{name}: вид {kind}, замечаний: {len(findings)}")
    return bool(findings)


def _kind_of(name: str, data: bytes) -> int | None:
    """The НСИ 1520 kind of a document by its templateId; None (said on stdout) when it cannot be told."""
    from iemk_etl import kinds as kinds_mod
    from iemk_etl.protocol import xml

    try:
        template = xml.parse(data).xpath("string(/*[local-name()='ClinicalDocument']"
                                             "/*[local-name()='templateId']/@root)")
    except Exception as exc:  # noqa: BLE001 - any parse problem is reported here as a finding
        template = ""
        print(f"{name}: не XML: {exc}")
    found = kinds_mod.by_template_id(template)
    if found is None:
        print(f"{name}: вид СЭМД не определён по templateId [{template}]; укажите --kind")
        return None
    return found.code


def cmd_documents_build(args: argparse.Namespace, settings: Settings) -> int:
    """«Получить документы»: form the period's СЭМД from the МИС records («Не подписан»)."""
    from iemk_etl.pipeline import forming

    check_period(args.start, args.end)
    start, end = periods.day_bounds(args.start, args.end, settings.timezone)
    _, conn = connect(settings)
    with conn:
        entry = integration.resolve_mo(conn, args.mo)
        result = forming.form_period(conn, entry.oid, start, end, kinds(args.kinds), mis_number=settings.mis_number)
    by_kind = ", ".join(f"вид {k}: {n}" for k, n in sorted(result.formed.items())) or "нет новых"
    print(f"{entry.code}: сформировано {result.total} ({by_kind}); обновлено: {result.refreshed}; "
          f"уже были: {result.skipped}; не сформировано: {len(result.errors)}")
    for source, reason in result.errors.items():
        print(f"  {source}: Ошибка: {reason}")
    if result.new_versions:
        print(f"  новые версии (запись МИС изменена после подписания): {', '.join(result.new_versions)}")
    return 0


def cmd_documents_sample(args: argparse.Namespace, settings: Settings) -> int:
    """N documents of a kind built from generated МИС data, without a database."""
    from iemk_etl import semd
    from iemk_etl.devtools.generate import Generator

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen = Generator(args.seed)
    day = args.day or dt.date.today()
    for n in range(args.count):
        case = gen.case(args.kind, day, n)
        path = out / f"{case.context.local_uid}.xml"
        path.write_bytes(semd.build(case))
        print(path)
    return 0


def cmd_documents_show(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.pipeline import queries
    from iemk_etl.semd import header

    dsn, conn = connect(settings)
    with conn:
        oid = header.mo_of(args.unique_id, settings.mis_number)
        _, code = mo_code(conn, oid)
        with iemk_client(settings, dsn, code) as iemk:
            shown = queries.show_document(iemk, settings, conn, args.unique_id)
    if args.out:
        Path(args.out).write_bytes(shown.data)
    else:
        sys.stdout.write(shown.data.decode("utf-8", errors="replace"))
    same = {True: "совпадают с переданными", False: "НЕ совпадают с переданными", None: "нам неизвестны"}
    print(f"\n{args.unique_id}: {len(shown.data)} байт, {same[shown.same_as_sent]}; "
          f"подпись: {shown.signature or 'нет'}", file=sys.stderr)
    return 0 if shown.same_as_sent is not False else 1


def register(sub: Subparsers) -> None:
    dcp = sub.add_parser("documents", help="СЭМД: form, sample, validate; documents in ИЭМК").add_subparsers(
        dest="documents_command", required=True)
    dl = dcp.add_parser("list", help="ITI-18 FindDocuments")
    dl.add_argument("--mo", required=True)
    dl.add_argument("--patient", help="the patient's local id")
    dl.add_argument("--from", dest="start", type=date)
    dl.add_argument("--to", dest="end", type=date)
    dl.add_argument("--kind", type=int, help="НСИ 1520 code")
    dl.set_defaults(func=cmd_documents_list)
    dv = dcp.add_parser("validate", help="ФЛК of СЭМД files: the pack's XSD, its Schematron, НСИ control")
    dv.add_argument("files", nargs="+")
    dv.add_argument("--kind", type=int, help="НСИ 1520 code (default: from templateId)")
    dv.add_argument("--no-logic", action="store_true", help="format control only (and НСИ control)")
    dv.add_argument("--nsi", metavar="DIR", help="НСИ control against this folder of ФНСИ dictionary files "
                    "(default: the dictionaries in the database)")
    dv.add_argument("--no-nsi", action="store_true", help="no НСИ control")
    dv.set_defaults(func=cmd_documents_validate)
    db_ = dcp.add_parser("build", help="form the period's СЭМД from the МИС records («Получить документы»)")
    db_.add_argument("--mo", required=True, help="МО OID or code")
    db_.add_argument("--from", dest="start", type=date, required=True, help="first day, inclusive")
    db_.add_argument("--to", dest="end", type=date, required=True, help="last day, inclusive")
    db_.add_argument("--kinds", default="", help="НСИ 1520 kind codes, comma-separated (default: all six)")
    db_.set_defaults(func=cmd_documents_build)
    dsm = dcp.add_parser("sample", help="write N documents of a kind built from generated data (no database)")
    dsm.add_argument("--kind", type=int, required=True, help="НСИ 1520 code: 41, 42, 43, 119, 174 or 186")
    dsm.add_argument("--count", type=int, default=3)
    dsm.add_argument("--out", required=True, help="folder for the .xml files")
    dsm.add_argument("--seed", type=int, default=1)
    dsm.add_argument("--day", type=date, help="the documents' day (default today)")
    dsm.set_defaults(func=cmd_documents_sample)
    ds = dcp.add_parser("show", help="ITI-43: one document, checked against what we sent")
    ds.add_argument("unique_id")
    ds.add_argument("--out", help="write the document here instead of printing it")
    ds.set_defaults(func=cmd_documents_show)
