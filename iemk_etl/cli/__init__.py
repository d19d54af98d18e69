"""The `iemk-etl` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg

from iemk_etl import periods
from iemk_etl import settings as settings_mod
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import report
from iemk_etl.settings import Settings
from iemk_etl.signing.keys import KeyMaterialError
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import db, integration
from iemk_etl.transport import client

log = logging.getLogger("iemk_etl")


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def _connect(settings: Settings) -> tuple[str, psycopg.Connection]:
    dsn = db.resolve_dsn(settings)
    db.migrate(dsn)
    return dsn, db.connect(dsn, autocommit=True)


# -- db ------------------------------------------------------------------------------------------------------

def cmd_db_init(args: argparse.Namespace, settings: Settings) -> int:
    dsn = db.resolve_dsn(settings)
    applied = db.migrate(dsn)
    print(f"schema is up to date ({', '.join(applied) if applied else 'nothing to apply'})")
    return 0


def cmd_db_seed(args: argparse.Namespace, settings: Settings) -> int:
    _, conn = _connect(settings)
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


def cmd_dev_cert(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.devtools import certs

    cert, key = certs.create_dev_certificate(Path(args.out), algorithm=args.algorithm, common_name=args.cn)
    print(f"test certificate {cert}\ntest key         {key}  ({args.algorithm}; for the demo and tests only)")
    return 0


# -- integration -------------------------------------------------------------------------------------------

def cmd_integration(args: argparse.Namespace, settings: Settings) -> int:
    _, conn = _connect(settings)
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


# -- servers -----------------------------------------------------------------------------------------------

def _serve_until_signal(stop: Callable[[], None], url: str, what: str) -> int:
    print(f"{what} listening on {url} (Ctrl+C to stop)", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    stop()
    return 0


def emulator_config(settings: Settings, reply_delay: float = 0.5, faults: str | None = None,
                    require_registered_patient: bool = False) -> EmulatorConfig:
    from iemk_etl.emulator.faults import FaultProfile

    profile = FaultProfile.load(faults or settings.emulator_faults)
    return EmulatorConfig(packs_dir=settings.packs_dir, require_packs=settings.require_packs, reply_delay=reply_delay,
                          faults=profile, require_registered_patient=require_registered_patient,
                          logical_control=settings.logical_control, known_clients=settings.emulator_clients,
                          known_mo=settings.emulator_mo)


def cmd_emulator_serve(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.emulator.server import EmulatorServer

    config = emulator_config(settings, args.reply_delay, args.faults, args.require_registered_patient)
    shared = args.workers > 1 or args.reuse_port
    server = EmulatorServer(config, _emulator_dsn(settings), args.host, args.port, reuse_port=shared).start()
    # More processes on the same port: one Python process is held to about one core by the GIL.
    helpers = [subprocess.Popen([*sys.argv[:1], *_worker_args(args)]) for _ in range(args.workers - 1)]

    def stop() -> None:
        for helper in helpers:
            helper.terminate()
        for helper in helpers:
            helper.wait(timeout=20)
        server.stop()

    return _serve_until_signal(stop, server.url, f"ИЭМК emulator ({args.workers} process(es))")


def _worker_args(args: argparse.Namespace) -> list[str]:
    argv = ["emulator", "serve", "--host", args.host, "--port", str(args.port), "--reply-delay", str(args.reply_delay),
            "--workers", "1", "--reuse-port"]
    if args.faults:
        argv += ["--faults", args.faults]
    if args.require_registered_patient:
        argv.append("--require-registered-patient")
    return argv


def _emulator_dsn(settings: Settings) -> str:
    """IEMK_EMULATOR_DSN, else the project database (the emulator keeps to its own schema there)."""
    return settings.emulator_dsn or db.resolve_dsn(settings)


def cmd_emulator_reset(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.emulator.store import Store

    store = Store(_emulator_dsn(settings))
    store.reset()
    store.close()
    print("emulator state cleared (patients, documents, messages, replies)")
    return 0


def cmd_callback_serve(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.transport.callback import CallbackServer

    dsn, conn = _connect(settings)
    conn.close()
    server = CallbackServer(dsn, args.host, args.port).start()
    return _serve_until_signal(server.stop, server.url, "callback receiver")


# -- export / status ---------------------------------------------------------------------------------------

def run_export(mo: list[str], start: dt.date, end: dt.date, env: dict[str, str] | None = None,
               extra: list[str] | None = None) -> int:
    """Run the DAGs in-process (dag.test) in a fresh Python with Airflow configured (iemk_airflow.runner)."""
    command = [sys.executable, "-m", "iemk_airflow.runner", "--from", start.isoformat(), "--to", end.isoformat()]
    for m in mo:
        command += ["--mo", m]
    command += extra or []
    return subprocess.run(command, env=settings_mod.child_environment(env), check=False).returncode


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    if args.end < args.start:
        raise SystemExit("--to must not be before --from")
    return run_export(args.mo, args.start, args.end)


def _airflow_executable() -> str:
    beside = Path(sys.executable).parent / "airflow"  # the same environment as this command
    return str(beside) if beside.exists() else "airflow"


def cmd_sign_and_send(args: argparse.Namespace, settings: Settings) -> int:
    if args.end < args.start:
        raise SystemExit("--to must not be before --from")
    return run_export([args.mo], args.start, args.end, extra=["--sign-and-send", "--kinds", args.kinds])


def cmd_sign(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.signing import keys, semd_signing

    signer = keys.load_signer(Path(args.cert), Path(args.key))
    out = Path(args.out or f"{args.file}.sig")
    out.write_bytes(semd_signing.sign_bytes(Path(args.file).read_bytes(), signer))
    print(f"detached CMS signature (DER): {out}")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.signing import cms
    from iemk_etl.signing.backend import get_backend

    try:
        verified = cms.verify_detached(Path(args.file).read_bytes(), Path(args.signature).read_bytes(), get_backend())
    except cms.CmsError as exc:
        print(f"подпись НЕ верна: {exc.code}: {exc.message}")
        return 1
    print(f"подпись верна: {verified.subject}; подписано {verified.signing_time:%Y-%m-%d %H:%M:%S %Z}")
    return 0


def backfill_command(dag_id: str, start: dt.date, end: dt.date, tz: str, *, reprocess: str,
                     dry_run: bool) -> list[str]:
    """`airflow backfill create` for whole local days: the CLI reads bare dates as UTC, which would shift
    every Moscow day by three hours, so the bounds carry the DAG's UTC offset explicitly."""

    def bound(day: dt.date) -> str:
        return periods.day_start(day, tz).isoformat()

    command = [_airflow_executable(), "backfill", "create", "--dag-id", dag_id, "--from-date", bound(start),
               "--to-date", bound(end), "--max-active-runs", "1", "--reprocess-behavior", reprocess]
    return command + (["--dry-run"] if dry_run else [])


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    entries = [e for e in integration.read_mo_config(settings.mo_config_path) if args.mo in (e.oid, e.code)]
    if not entries:
        raise SystemExit(f"МО [{args.mo}] has no export DAG: run `iemk-etl integration enable --mo {args.mo}` first")
    command = backfill_command(entries[0].dag_id(), args.start, args.end, settings.timezone,
                               reprocess=args.reprocess, dry_run=args.dry_run)
    print(" ".join(command), flush=True)
    print("(the scheduler runs it; the DAG must be unpaused: `airflow dags unpause "
          f"{entries[0].dag_id()}`)", flush=True)
    return subprocess.run(command, check=False).returncode


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    dsn, conn = _connect(settings)
    with conn:
        if args.document is not None:
            return _document_status(dsn, conn, settings, args.document, args.refresh)
        frame = report.documents(conn, args.mo)
    sys.stdout.write(report.render(frame, args.format))
    return 0


def _document_status(dsn: str, conn: psycopg.Connection, settings: Settings, document_id: int, refresh: bool) -> int:
    """«Обновить»: re-read the document's answers and show where it stands."""
    from iemk_etl.pipeline import export

    row = conn.execute("SELECT mo_oid FROM mis.semd_document WHERE id = %s", (document_id,)).fetchone()
    if row is None:
        raise SystemExit(f"документ {document_id} не найден в mis.semd_document")
    if refresh:
        ids = [r[0] for r in conn.execute("SELECT id FROM iemk.ledger WHERE document_id = %s", (document_id,))]
        export.write_back(conn, row[0], ids)
    status, local_uid, version = conn.execute("SELECT status, local_uid, version FROM mis.semd_document WHERE id = %s",
                                              (document_id,)).fetchone()
    print(f"документ {document_id} ({local_uid}, версия {version}): {status}")
    for state, attempts, message_id, sent, replied, error in conn.execute(
            "SELECT state, attempts, message_id, last_sent_at, replied_at, last_error FROM iemk.ledger"
            " WHERE document_id = %s ORDER BY version", (document_id,)):
        print(f"  ledger: {state}, попыток {attempts}, MessageID {message_id or '—'}, передан {sent or '—'}, "
              f"ответ {replied or '—'}" + (f", ошибка: {error}" if error else ""))
    return 0


def _mo_code(conn: psycopg.Connection, mo: str) -> tuple[str, str]:
    entry = integration.resolve_mo(conn, mo)
    return entry.oid, entry.code


def _service_settings(settings: Settings) -> Settings:
    if not settings.iemk_url and not settings.repository_url:
        raise SystemExit("set IEMK_URL (the ИЭМК or emulator base URL) or the per-service URLs")
    return settings


def _mo_client(settings: Settings, mo: str) -> tuple[str, client.IemkClient]:
    """The МО's OID and its signed ИЭМК client, for the commands that ask ИЭМК on its behalf."""
    from iemk_etl.pipeline import queries

    _, conn = _connect(settings)
    with conn:
        oid, code = _mo_code(conn, mo)
    return oid, queries.client_for(_service_settings(settings), code)


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.pipeline import export, queries

    dsn, conn = _connect(settings)
    with conn:
        row = conn.execute("SELECT m.oid, m.code FROM mis.semd_document d JOIN mis.mo m ON m.oid = d.mo_oid"
                           " WHERE d.id = %s", (args.document,)).fetchone()
    if row is None:
        raise SystemExit(f"документ {args.document} не найден в mis.semd_document")
    if not settings.callback_url:
        raise SystemExit("set IEMK_CALLBACK_URL: ИЭМК answers a document asynchronously there")
    with queries.client_for(_service_settings(settings), row[1]) as iemk:
        counts = export.deliver_now(dsn, row[0], [args.document], settings, iemk, wait_seconds=args.wait)
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    with db.connect(dsn) as conn2:
        return _document_status(dsn, conn2, settings, args.document, refresh=False)


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:

    from iemk_etl.pipeline import queries, reconcile

    dsn, conn = _connect(settings)
    start, end = periods.open_day_bounds(args.start, args.end, settings.timezone)
    with conn:
        oid, code = _mo_code(conn, args.mo)
        with queries.client_for(_service_settings(settings), code) as iemk:
            frame = reconcile.reconcile(conn, iemk, settings, oid, start, end,  # type: ignore[arg-type]
                                        repair=not args.report_only)
    out = Path(args.csv or settings.home / "reports" / f"reconcile-{code}-{args.start}-{args.end}.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    print(frame.to_string(index=False) if not frame.empty else "расхождений нет")
    print(f"CSV: {out}")
    return 0


def cmd_patients_search(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.pipeline import queries
    from iemk_etl.protocol.hl7v3 import pdq

    oid, iemk = _mo_client(settings, args.mo)
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


def cmd_documents_list(args: argparse.Namespace, settings: Settings) -> int:

    from iemk_etl.pipeline import queries
    from iemk_etl.protocol.xds import query as xds_query
    from iemk_etl.protocol.xds.common import patient_cx

    oid, iemk = _mo_client(settings, args.mo)
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
    from iemk_etl import kinds
    from iemk_etl.flk import validation
    from iemk_etl.protocol import xml

    failed = False
    for name in args.files:
        data = Path(name).read_bytes()
        kind = args.kind
        if kind is None:
            try:
                template = xml.parse(data).xpath("string(/*[local-name()='ClinicalDocument']"
                                                     "/*[local-name()='templateId']/@root)")
            except Exception as exc:  # noqa: BLE001 - any parse problem is reported below as a finding
                template = ""
                print(f"{name}: не XML: {exc}")
            found = kinds.by_template_id(template)
            if found is None:
                print(f"{name}: вид СЭМД не определён по templateId [{template}]; укажите --kind")
                failed = True
                continue
            kind = found.code
        findings = validation.validate(kind, data, packs_dir=settings.packs_dir, require_packs=settings.require_packs,
                                       logical=not args.no_logic)
        for f in findings:
            print(f"{name}: [{f.stage} {f.rule}] {f.message}" + (f" ({f.location})" if f.location else ""))
        print(f"{name}: вид {kind}, замечаний: {len(findings)}")
        failed = failed or bool(findings)
    return 1 if failed else 0


def cmd_documents_build(args: argparse.Namespace, settings: Settings) -> int:
    """«Получить документы»: form the period's СЭМД from the МИС records («Не подписан»)."""
    from iemk_etl.pipeline import forming

    if args.end < args.start:
        raise SystemExit("--to must not be before --from")
    start, end = periods.day_bounds(args.start, args.end, settings.timezone)
    _, conn = _connect(settings)
    with conn:
        entry = integration.resolve_mo(conn, args.mo)
        result = forming.form_period(conn, entry.oid, start, end, _kinds(args.kinds))
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


def _kinds(value: str) -> set[int] | None:
    return {int(k) for k in value.split(",") if k.strip()} or None


def cmd_documents_show(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.pipeline import queries

    dsn, conn = _connect(settings)
    with conn:
        oid = queries.mo_of(args.unique_id)
        _, code = _mo_code(conn, oid)
        with queries.client_for(_service_settings(settings), code) as iemk:
            shown = queries.show_document(iemk, settings, conn, args.unique_id)
    if args.out:
        Path(args.out).write_bytes(shown.data)
    else:
        sys.stdout.write(shown.data.decode("utf-8", errors="replace"))
    same = {True: "совпадают с переданными", False: "НЕ совпадают с переданными", None: "нам неизвестны"}
    print(f"\n{args.unique_id}: {len(shown.data)} байт, {same[shown.same_as_sent]}; "
          f"подпись: {shown.signature or 'нет'}", file=sys.stderr)
    return 0 if shown.same_as_sent is not False else 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.devtools import demo

    return demo.run(settings, patients=args.patients, days=args.days, seed=args.seed)


# -- parser ------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="iemk-etl", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True)

    dbp = sub.add_parser("db", help="the database: schema, demo data, the embedded server").add_subparsers(
        dest="db_command", required=True)
    dbp.add_parser("init", help="create or migrate the schema").set_defaults(func=cmd_db_init)
    seed = dbp.add_parser("seed", help="generate demo МИС data")
    seed.add_argument("--patients", type=int, default=40)
    seed.add_argument("--days", type=int, default=3, help="days of documents, ending the day before --end")
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--end", type=_date, default=None, help="first day after the generated period (default today)")
    seed.add_argument("--fail-share", type=float, default=0.2, help="share of documents that must fail control")
    seed.set_defaults(func=cmd_db_seed)
    dbp.add_parser("start", help="start the embedded PostgreSQL and print its DSN").set_defaults(func=cmd_db_start)
    dbp.add_parser("stop", help="stop the embedded PostgreSQL").set_defaults(func=cmd_db_stop)

    dc = sub.add_parser("dev-cert", help="create a self-signed test certificate and key for signing requests")
    dc.add_argument("--out", required=True, help="folder for client-cert.pem and client-key.pem")
    dc.add_argument("--algorithm", choices=("gost", "rsa"), default="gost")
    dc.add_argument("--cn", default="iemk-etl test client", help="the certificate's common name")
    dc.set_defaults(func=cmd_dev_cert)

    sg = sub.add_parser("sign", help="sign a file: detached CMS (CAdES-BES, GOST R 34.10-2012), DER")
    sg.add_argument("file")
    sg.add_argument("--cert", required=True)
    sg.add_argument("--key", required=True)
    sg.add_argument("--out", help="default FILE.sig")
    sg.set_defaults(func=cmd_sign)

    vf = sub.add_parser("verify", help="verify a detached CMS signature of a file")
    vf.add_argument("file")
    vf.add_argument("signature")
    vf.set_defaults(func=cmd_verify)

    ss = sub.add_parser("sign-and-send", help="sign the unsigned documents of a period, then export them")
    ss.add_argument("--mo", required=True, help="МО OID or code")
    ss.add_argument("--from", dest="start", type=_date, required=True, help="first day (document created), inclusive")
    ss.add_argument("--to", dest="end", type=_date, required=True, help="last day, inclusive")
    ss.add_argument("--kinds", default="", help="НСИ 1520 kind codes, comma-separated (default: all)")
    ss.set_defaults(func=cmd_sign_and_send)

    ip = sub.add_parser("integration", help="the per-МО switch of external system fed_iemk")
    ip.add_argument("action", choices=("enable", "disable", "status"))
    ip.add_argument("--mo", help="МО OID or short code")
    ip.set_defaults(func=cmd_integration)

    ep = sub.add_parser("emulator", help="the ИЭМК emulator").add_subparsers(dest="emulator_command", required=True)
    es = ep.add_parser("serve", help="serve the emulator over HTTP")
    es.add_argument("--host", default="127.0.0.1")
    es.add_argument("--port", type=int, default=8510)
    es.add_argument("--reply-delay", type=float, default=0.5, help="seconds before the asynchronous reply")
    es.add_argument("--faults", help="fault profile: JSON or a JSON file (default: IEMK_EMULATOR_FAULTS)")
    es.add_argument("--require-registered-patient", action="store_true",
                    help="refuse ITI-41 documents whose patient was not fed through PIX first")
    es.add_argument("--workers", type=int, default=1, help="server processes sharing the port (needs --port)")
    es.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    es.set_defaults(func=cmd_emulator_serve)
    ep.add_parser("reset", help="clear the emulator's stored state").set_defaults(func=cmd_emulator_reset)

    cp = sub.add_parser("callback", help="the receiver of asynchronous replies").add_subparsers(
        dest="callback_command", required=True)
    cs = cp.add_parser("serve", help="serve the callback receiver over HTTP")
    cs.add_argument("--host", default="127.0.0.1")
    cs.add_argument("--port", type=int, default=8520)
    cs.set_defaults(func=cmd_callback_serve)

    xp = sub.add_parser("export", help="export a period now, through the Airflow DAG, without a scheduler")
    xp.add_argument("--mo", action="append", required=True, help="МО OID or code (repeat, or 'all')")
    xp.add_argument("--from", dest="start", type=_date, required=True, help="first day, inclusive")
    xp.add_argument("--to", dest="end", type=_date, required=True, help="last day, inclusive")
    xp.set_defaults(func=cmd_export)

    bp = sub.add_parser("backfill", help="create a native Airflow backfill of whole days (needs a running scheduler)")
    bp.add_argument("--mo", required=True, help="МО OID or code")
    bp.add_argument("--from", dest="start", type=_date, required=True, help="first day, inclusive")
    bp.add_argument("--to", dest="end", type=_date, required=True, help="last day, inclusive")
    bp.add_argument("--reprocess", choices=("none", "failed", "completed"), default="none",
                    help="what to do with days that already have a run")
    bp.add_argument("--dry-run", action="store_true")
    bp.set_defaults(func=cmd_backfill)

    sp = sub.add_parser("status", help="documents by status and МО, or one document")
    sp.add_argument("--mo")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sp.add_argument("--document", type=int, help="one МИС document id")
    sp.add_argument("--refresh", action="store_true", help="with --document: re-read its answers first («Обновить»)")
    sp.set_defaults(func=cmd_status)

    sd = sub.add_parser("send", help="«Передать документ в ИЭМК»: one signed document now")
    sd.add_argument("--document", type=int, required=True, help="МИС document id")
    sd.add_argument("--wait", type=float, default=30.0, help="seconds to wait for ИЭМК's answer")
    sd.set_defaults(func=cmd_send)

    rc = sub.add_parser("reconcile", help="compare what ИЭМК holds for a period with the ledger, and repair")
    rc.add_argument("--mo", required=True)
    rc.add_argument("--from", dest="start", type=_date, required=True)
    rc.add_argument("--to", dest="end", type=_date, required=True)
    rc.add_argument("--csv", help="where to write the findings (default under IEMK_HOME/reports)")
    rc.add_argument("--report-only", action="store_true", help="change nothing, only report")
    rc.set_defaults(func=cmd_reconcile)

    pp = sub.add_parser("patients", help="patients in ИЭМК").add_subparsers(dest="patients_command", required=True)
    ps = pp.add_parser("search", help="PDQ: find patients in ИЭМК")
    ps.add_argument("--mo", required=True)
    ps.add_argument("--local-id")
    ps.add_argument("--snils")
    ps.add_argument("--family")
    ps.add_argument("--given")
    ps.add_argument("--birth", type=_date)
    ps.set_defaults(func=cmd_patients_search)

    dcp = sub.add_parser("documents", help="СЭМД: form, sample, validate; documents in ИЭМК").add_subparsers(
        dest="documents_command", required=True)
    dl = dcp.add_parser("list", help="ITI-18 FindDocuments")
    dl.add_argument("--mo", required=True)
    dl.add_argument("--patient", help="the patient's local id")
    dl.add_argument("--from", dest="start", type=_date)
    dl.add_argument("--to", dest="end", type=_date)
    dl.add_argument("--kind", type=int, help="НСИ 1520 code")
    dl.set_defaults(func=cmd_documents_list)
    dv = dcp.add_parser("validate", help="ФЛК of СЭМД files: the pack's XSD, then its Schematron")
    dv.add_argument("files", nargs="+")
    dv.add_argument("--kind", type=int, help="НСИ 1520 code (default: from templateId)")
    dv.add_argument("--no-logic", action="store_true", help="format control only")
    dv.set_defaults(func=cmd_documents_validate)
    db_ = dcp.add_parser("build", help="form the period's СЭМД from the МИС records («Получить документы»)")
    db_.add_argument("--mo", required=True, help="МО OID or code")
    db_.add_argument("--from", dest="start", type=_date, required=True, help="first day, inclusive")
    db_.add_argument("--to", dest="end", type=_date, required=True, help="last day, inclusive")
    db_.add_argument("--kinds", default="", help="НСИ 1520 kind codes, comma-separated (default: all six)")
    db_.set_defaults(func=cmd_documents_build)
    dsm = dcp.add_parser("sample", help="write N documents of a kind built from generated data (no database)")
    dsm.add_argument("--kind", type=int, required=True, help="НСИ 1520 code: 41, 42, 43, 119, 174 or 186")
    dsm.add_argument("--count", type=int, default=3)
    dsm.add_argument("--out", required=True, help="folder for the .xml files")
    dsm.add_argument("--seed", type=int, default=1)
    dsm.add_argument("--day", type=_date, help="the documents' day (default today)")
    dsm.set_defaults(func=cmd_documents_sample)
    ds = dcp.add_parser("show", help="ITI-43: one document, checked against what we sent")
    ds.add_argument("unique_id")
    ds.add_argument("--out", help="write the document here instead of printing it")
    ds.set_defaults(func=cmd_documents_show)

    dp = sub.add_parser("demo", help="set everything up and export a 3-day period on the embedded defaults")
    dp.add_argument("--patients", type=int, default=40)
    dp.add_argument("--days", type=int, default=3)
    dp.add_argument("--seed", type=int, default=42)
    dp.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args, settings_mod.load())
    except (integration.UnknownMoError, db.NoDatabaseError, KeyMaterialError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

