"""Benchmarks at region scale (issue 14 item 8): a night's export through the real export DAG on Airflow.

Every part is real and started here, each its own process group: the embedded PostgreSQL (data kept in the cache
folder, so seeds survive between runs), the ИЭМК emulator (``iemk-etl emulator serve``, its own ФЛК off: no packs,
``IEMK_LOGICAL_CONTROL=0``, so the exporter is what is measured), the callback receiver (``iemk-etl callback
serve``) and ``airflow standalone`` (scheduler, dag-processor, triggerer, api-server) with the LocalExecutor,
``parallelism`` = the cores unless given, on a PostgreSQL metadata database.

    .venv/bin/python benchmarks/bench_region.py seed  --mo 1 --per-mo 200 [--prevalidate]
    .venv/bin/python benchmarks/bench_region.py night --mo 1 --per-mo 200 [--prevalidated]
    .venv/bin/python benchmarks/bench_region.py night --mo 1 --per-mo 0 --big-count 2 --big-mb 5
    .venv/bin/python benchmarks/bench_region.py suite [--documents 20000 --mo 200 --per-mo 100 --sizes 2000,20000
                                                       --big-count 8 --big-mb 50]

``seed`` (cached; not measured) generates the МИС data (``demo_data.seed``: the demo's mix of the six kinds, every
document signed, none made to fail) into a template database ``bench_<key>``; ``--prevalidate`` also makes
``bench_<key>_valid``: the same after the core's extract + validate (``pipeline.extract``, ``pipeline.validate``),
so every ledger row is ``valid`` and the DAG's validate finds nothing left to check. ``night`` seeds what is
missing, clones the template (CREATE DATABASE … TEMPLATE), moves the documents' signing days to yesterday, starts
everything, unpauses the export DAGs (one SQL statement on the metadata database, after the dag-processor has
parsed them all and the pool is set up), lets the scheduler run one scheduled night (the latest daily interval,
catchup off) and measures. ``suite`` runs the issue's list. Definitions: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(Path(__file__).resolve().parent)]
BIN = Path(sys.executable).parent
IEMK = [str(BIN / "python"), "-c", "import sys; from iemk_etl.cli import main; sys.exit(main())"]

from region_stack import Child, MemorySampler, free_port, say, tail, wait_for  # noqa: E402

CLIENT_ENTITY_ID = "17c74e63-dc38-438d-a27a-a1aa063ee7b8"     # the demo's test system; the emulator accepts any
# The demo's mix of the six kinds needs several days (a stay's discharge documents come days after its start): the
# seed spans SEED_DAYS days, and a night's clone moves every signing time into yesterday, keeping the time of day.
SEED_DAYS = 3
DOCS_PER_PATIENT = 3.3      # measured (233 from 69 patients): signed documents a patient has over the seeded days
SEED = 14
MB = 1_000_000
EXPORT_LIKE = r"iemk\_export\_\_%"


@dataclasses.dataclass(frozen=True)
class Spec:
    """One night's data: ``mo`` МО with about ``per_mo`` documents each, plus ``big_count`` СЭМД of ``big_mb`` MB
    (a scanned PDF inside) in the first МО."""

    mo: int
    per_mo: int
    big_count: int = 0
    big_mb: float = 0

    @property
    def key(self) -> str:
        big = f"_big{self.big_count}x{str(self.big_mb).replace('.', 'p')}" if self.big_count else ""
        return f"m{self.mo}x{self.per_mo}d{SEED_DAYS}{big}"


# -- the cluster and the seed -------------------------------------------------------------------------------

def start_cluster(cache: Path) -> str:
    """The embedded PostgreSQL of the cache folder (started if it is not running); DSN of its ``postgres`` db."""
    from iemk_etl.store import embedded_pg

    dsn = embedded_pg.start(cache / "home")
    return make_conninfo(dsn, dbname="postgres")


def postmaster_pid(cache: Path) -> int | None:
    pid_file = cache / "home" / "pgdata" / "postmaster.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def db_meta(admin: str, name: str) -> dict[str, Any] | None:
    with psycopg.connect(admin, autocommit=True) as c:
        row = c.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                        (name,)).fetchone()
    if not row or not row[0]:
        return None
    return json.loads(row[0])


def recreate(admin: str, name: str, template: str | None = None) -> str:
    drop(admin, name)
    with psycopg.connect(admin, autocommit=True) as c:
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        c.execute(create)
    return make_conninfo(admin, dbname=name)


def drop(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def publish(admin: str, partial: str, name: str, meta: dict[str, Any]) -> None:
    """The finished seed under its name, its description (the seed's facts) as the database's comment."""
    drop(admin, name)
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(partial), sql.Identifier(name)))
        c.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(json.dumps(meta))))


def seed(cache: Path, spec: Spec, *, prevalidate: bool) -> dict[str, Any]:
    """The template database of ``spec`` (made once, kept in the cache); with ``prevalidate`` its validated twin."""
    admin = start_cluster(cache)
    name = f"bench_{spec.key}"
    meta = db_meta(admin, name)
    if meta is None:
        meta = _seed_new(admin, name, spec)
    if prevalidate and db_meta(admin, f"{name}_valid") is None:
        _prevalidate(admin, name, meta)
    return meta


def _seed_new(admin: str, name: str, spec: Spec) -> dict[str, Any]:
    from iemk_etl import settings as settings_mod
    from iemk_etl.devtools import demo_data
    from iemk_etl.signing.keystore import KeyStore
    from iemk_etl.store import db, integration

    started = time.monotonic()
    dsn = recreate(admin, f"{name}_partial")
    db.migrate(dsn)
    settings = settings_mod.load()
    zone = settings.timezone
    end = dt.datetime.now(demo_data.MSK).date()
    mo = demo_data.region_mo(spec.mo)
    patients = max(spec.mo, math.ceil(spec.mo * spec.per_mo / DOCS_PER_PATIENT)) if spec.per_mo else spec.mo * 2
    say(f"seeding {name}: {spec.mo} МО, {patients} patients, {SEED_DAYS} days up to {end - dt.timedelta(days=1)}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        result = demo_data.seed(conn, patients=patients, days=SEED_DAYS, seed=SEED, end=end, fail_share=0.0,
                                unsigned_share=0.0, store=KeyStore(settings), tz=zone, mo=mo)
        for oid, *_ in mo:
            integration.set_enabled(conn, oid, True)
        big = _seed_big(conn, settings, mo[0][0], end - dt.timedelta(days=1), spec) if spec.big_count else []
        documents = conn.execute("SELECT count(*), coalesce(sum(length(cda)), 0) FROM mis.semd_document"
                                 " WHERE signed_at IS NOT NULL").fetchone()
    meta = {"spec": dataclasses.asdict(spec), "first": str(end - dt.timedelta(days=SEED_DAYS)),
            "day": str(end - dt.timedelta(days=1)), "documents": documents[0],
            "bytes": documents[1], "by_kind": result.by_kind, "big": big,
            "seconds": round(time.monotonic() - started, 1)}
    publish(admin, f"{name}_partial", name, meta)
    say(f"seeded {name}: {documents[0]} signed documents, {documents[1] / MB:.1f} MB, in {meta['seconds']} s")
    return meta


def _seed_big(conn: psycopg.Connection, settings: Any, mo_oid: str, day: dt.date, spec: Spec) -> list[int]:
    """``big_count`` outpatient visits, each with a scanned report of the size that makes a ``big_mb`` MB СЭМД
    (base64 inflates by 4/3), formed and signed as the МИС does."""
    from iemk_etl.devtools.generate import scanned_pdf
    from iemk_etl.pipeline import forming, sign
    from iemk_etl.protocol import snils
    from iemk_etl.signing.keystore import KeyStore

    zone = dt.timezone(dt.timedelta(hours=3))
    patient_id, doctor_id = next(
        (p, s) for p, s, number in conn.execute(
            "SELECT p.id, s.id, p.snils FROM mis.patient p JOIN mis.staff s ON s.mo_oid = p.mo_oid"
            " WHERE p.mo_oid = %s AND p.address IS NOT NULL ORDER BY p.id, s.id", (mo_oid,))
        if number and snils.is_valid(number))
    scan = scanned_pdf(int(spec.big_mb * MB * 3 / 4) - 60_000)
    for n in range(spec.big_count):
        at = dt.datetime.combine(day, dt.time(11, n), zone)
        visit = conn.execute(
            "INSERT INTO mis.visit (mo_oid, patient_id, doctor_id, local_id, started_at, ended_at, conclusion)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'Здоров') RETURNING id",
            (mo_oid, patient_id, doctor_id, f"BIG-{n}", at, at + dt.timedelta(minutes=20))).fetchone()[0]
        conn.execute("INSERT INTO mis.diagnosis (visit_id, icd10, name)"
                     " VALUES (%s, 'Z00.0', 'Общий медицинский осмотр')", (visit,))
        conn.execute("INSERT INTO mis.report_template (visit_id, name, file_name, content, to_iemk, signed_at)"
                     " VALUES (%s, 'Протокол (скан)', 'scan.pdf', %s, true, %s)", (visit, scan, at))
    bounds = (dt.datetime.combine(day, dt.time(), zone),
              dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone))
    formed = forming.form_period(conn, mo_oid, *bounds, mis_number=settings.mis_number)
    signed = sign.sign_period(conn, KeyStore(settings), mo_oid, *bounds, None).signed
    sizes = [r[0] for r in conn.execute("SELECT length(cda) FROM mis.semd_document WHERE local_uid LIKE '%%BIG-%%'")]
    say(f"big documents: formed {formed.formed}, signed {len(signed)}, sizes {[round(s / MB, 1) for s in sizes]} MB")
    return sizes


def _prevalidate(admin: str, name: str, meta: dict[str, Any]) -> None:
    """The core's extract + validate over the seeded days, in a copy: the ledger rows are then ``valid``."""
    from iemk_etl import periods
    from iemk_etl import settings as settings_mod
    from iemk_etl.pipeline import extract, validate
    from iemk_etl.store import integration

    started = time.monotonic()
    dsn = recreate(admin, f"{name}_valid_partial", name)
    settings = settings_mod.load()
    first, day = dt.date.fromisoformat(meta["first"]), dt.date.fromisoformat(meta["day"])
    start, end = periods.day_start(first, settings.timezone), periods.day_start(day + dt.timedelta(days=1),
                                                                                  settings.timezone)
    states: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for mo in integration.integrated_mo(conn):
            ids = extract.extract(conn, mo.oid, start, end, mis_number=settings.mis_number)
            validate.validate(conn, ids, settings)
        for state, count in conn.execute("SELECT state, count(*) FROM iemk.ledger GROUP BY state"):
            states[state] = count
    seconds = round(time.monotonic() - started, 1)
    publish(admin, f"{name}_valid_partial", f"{name}_valid", {**meta, "prevalidated": states})
    say(f"prevalidated {name}_valid in {seconds} s: ledger {states}")


# -- a night ------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Night:
    cache: Path
    spec: Spec
    prevalidated: bool
    parallelism: int
    timeout: float
    emulator_workers: int
    keep: bool
    flk_processes: int
    heartbeat_interval: int
    children: list[Child] = dataclasses.field(default_factory=list)

    def run(self) -> dict[str, Any]:
        meta = seed(self.cache, self.spec, prevalidate=self.prevalidated)
        admin = start_cluster(self.cache)
        template = f"bench_{self.spec.key}" + ("_valid" if self.prevalidated else "")
        run_db, meta_db = f"run_{self.spec.key}", f"airflow_{self.spec.key}"
        work = Path(tempfile.mkdtemp(prefix=f"bench-region-{self.spec.key}-"))
        self.logs = work / "logs"
        self.logs.mkdir()
        say(f"night {template}: work folder {work}")
        dsn = recreate(admin, run_db, template)
        meta_dsn = recreate(admin, meta_db)
        night = _move_to_yesterday(dsn)
        sampler = MemorySampler(self._roots).start()
        ok = False
        try:
            result = self._night(dsn, meta_dsn, work, sampler)
            ok = True
        finally:
            sampler.stop()
            for child in reversed(self.children):
                child.stop()
            if not self.keep:
                drop(admin, run_db)
                drop(admin, meta_db)
            if ok and not self.keep:        # a failed night keeps its logs (the error names the folder)
                shutil.rmtree(work, ignore_errors=True)
            elif not ok:
                say(f"logs kept in {self.logs}")
        result.update(documents_seeded=meta["documents"], seeded_mb=round(meta["bytes"] / MB, 1),
                      night=night, logs=str(self.logs) if self.keep else None, memory=_memory(sampler))
        return result

    def _roots(self) -> list[int]:
        pids = [c.proc.pid for c in self.children if c.proc is not None]
        pg = postmaster_pid(self.cache)
        return pids + ([pg] if pg else [])

    def _env(self, dsn: str, meta_dsn: str, work: Path, ports: dict[str, int]) -> dict[str, str]:
        from cryptography.fernet import Fernet

        info = conninfo_to_dict(meta_dsn)
        url = f"postgresql+psycopg://{info.get('user') or 'postgres'}@/{info['dbname']}?host={info['host']}"
        limit = max(64 * 1024 * 1024, int(self.spec.big_mb * MB * 1.45) + 4 * 1024 * 1024)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "_AIRFLOW_"))}
        return {**env,
                "PATH": f"{BIN}:{env.get('PATH', '')}",
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"), env.get("PYTHONPATH", "")]),
                "AIRFLOW_HOME": str(work / "airflow"),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(ports["api"]),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{ports['api']}/execution/",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                # As docker-compose.yaml and the README advise for hundreds of МО: the full parse is not redone
                # every 30 s beside the night.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
                # A task's supervisor notices its process has ended at its next wake-up, up to this many seconds
                # after the end (Airflow 3.3's default 5 s is seconds of an idle slot after every task).
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": str(self.heartbeat_interval),
                "IEMK_HOME": str(self.cache / "home"),
                "IEMK_SOURCE_DSN": dsn,
                "IEMK_MO_SOURCES": "file",
                "IEMK_MO_CONFIG": str(work / "mo.json"),
                "IEMK_URL": f"http://127.0.0.1:{ports['emulator']}",
                "IEMK_CALLBACK_URL": f"http://127.0.0.1:{ports['callback']}/ips/callback",
                "IEMK_CLIENT_ENTITY_ID": CLIENT_ENTITY_ID,
                "IEMK_SCHEDULE_CRON": "0 0 * * *",
                "IEMK_REPLY_POKE_SECONDS": "2",
                "IEMK_MAX_MESSAGE_BYTES": str(limit),
                "IEMK_FLK_PROCESSES": str(self.flk_processes),
                "IEMK_LOGICAL_CONTROL": "1",        # the exporter's ФЛК in full, whatever the caller's environment
                }

    def _night(self, dsn: str, meta_dsn: str, work: Path, sampler: MemorySampler) -> dict[str, Any]:
        from iemk_etl.store import integration

        ports = {"api": free_port(), "emulator": free_port(), "callback": free_port()}
        env = self._env(dsn, meta_dsn, work, ports)
        with psycopg.connect(dsn) as conn:
            entries = integration.integrated_mo(conn)
        for entry in entries:
            integration.remember_mo(work / "mo.json", entry)
        emulator_env = {**env, "IEMK_EMULATOR_DSN": dsn, "IEMK_SEMD_PACKS": "", "IEMK_LOGICAL_CONTROL": "0"}
        self._start("emulator", [*IEMK, "emulator", "serve", "--port", str(ports["emulator"]), "--reply-delay", "0",
                                 "--workers", str(self.emulator_workers)], emulator_env)
        self._start("callback", [*IEMK, "callback", "serve", "--port", str(ports["callback"])], env)
        self._start("airflow", [str(BIN / "airflow"), "standalone"], env, cwd=work)
        logs = [self.logs / f"{c.name}.log" for c in self.children]
        mo_count = len(entries)

        def parsed() -> bool:
            with psycopg.connect(meta_dsn) as c:
                return c.execute("SELECT count(*) FROM dag WHERE dag_id LIKE %s AND is_stale IS NOT TRUE",
                                 (EXPORT_LIKE,)).fetchone()[0] >= mo_count

        started = time.monotonic()
        wait_for(f"the dag-processor to parse {mo_count} export DAGs", parsed, 600 + mo_count * 3, self.children, logs)
        say(f"{mo_count} export DAGs parsed {time.monotonic() - started:.0f} s after start")
        setup = Child("setup", [str(BIN / "python"), "-m", "iemk_airflow.setup", "--slots", str(self.parallelism)],
                      env, self.logs / "setup.log").start()
        if setup.proc is None or setup.proc.wait(timeout=180) != 0:
            raise RuntimeError("iemk_airflow.setup failed\n" + tail(setup.log))
        import httpx

        # The api-server builds its Execution API on the first call: done now, not inside the measured night.
        wait_for("the api-server's Execution API",
                 lambda: httpx.get(f"http://127.0.0.1:{ports['api']}/execution/health", timeout=30).status_code == 200,
                 300, self.children, logs)
        with psycopg.connect(meta_dsn, autocommit=True) as c:
            c.execute("UPDATE dag SET is_paused = false WHERE dag_id LIKE %s OR dag_id = 'iemk_report'",
                      (EXPORT_LIKE,))
        sampler.mark(True)
        say(f"unpaused {mo_count} export DAGs: the night starts")

        def finished() -> bool:
            with psycopg.connect(meta_dsn) as c:
                done, total = c.execute("SELECT count(*) FILTER (WHERE state IN ('success', 'failed')), count(*)"
                                        " FROM dag_run WHERE dag_id LIKE %s", (EXPORT_LIKE,)).fetchone()
            return total >= mo_count and done == total

        wait_for("every export run to finish", self._progress(finished, meta_dsn, mo_count), self.timeout,
                 self.children, [*logs, *sorted((work / "airflow" / "logs").rglob("*.log"))[-3:]], interval=2)
        sampler.mark(False)
        sampler.sample()
        result = _metrics(meta_dsn, dsn, self.parallelism)
        result.update(mo=mo_count, parallelism=self.parallelism, prevalidated=self.prevalidated,
                      spec=dataclasses.asdict(self.spec))
        return result

    def _progress(self, finished: Any, meta_dsn: str, mo_count: int) -> Any:
        last = [time.monotonic()]

        def probe() -> bool:
            if time.monotonic() - last[0] > 30:
                last[0] = time.monotonic()
                with psycopg.connect(meta_dsn) as c:
                    states = dict(c.execute("SELECT state, count(*) FROM dag_run WHERE dag_id LIKE %s GROUP BY state",
                                            (EXPORT_LIKE,)).fetchall())
                    tis = dict(c.execute("SELECT coalesce(state, 'none'), count(*) FROM task_instance"
                                         " GROUP BY 1").fetchall())
                say(f"runs {states} of {mo_count}; task instances {tis}")
            return finished()
        return probe

    def _start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.children.append(Child(name, argv, env, self.logs / f"{name}.log").start(cwd))


def _move_to_yesterday(dsn: str) -> str:
    """The scheduled night is yesterday's: every signing time (МИС, outbox, ledger) moves to yesterday, same time
    of day, in the exporter's zone."""
    from iemk_etl import periods
    from iemk_etl import settings as settings_mod

    zone = settings_mod.load().timezone
    yesterday = dt.datetime.now(periods.zone(zone)).date() - dt.timedelta(days=1)
    moved = "((%s::date + ({c} AT TIME ZONE %s)::time) AT TIME ZONE %s)"
    with psycopg.connect(dsn, autocommit=True) as c, c.transaction():
        for table, column in (("mis.semd_document", "signed_at"), ("iemk.outbox", "event_at"),
                              ("iemk.ledger", "signed_at")):
            c.execute(f"UPDATE {table} SET {column} = {moved.format(c=column)} WHERE {column} IS NOT NULL",
                      (yesterday, zone, zone))
    return str(yesterday)


def _columns(c: psycopg.Connection, table: str) -> set[str]:
    return {r[0] for r in c.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                                    (table,))}


def _metrics(meta_dsn: str, dsn: str, parallelism: int) -> dict[str, Any]:
    """Wall time, rates and the scheduler's share, from the metadata database and the ledger (definitions: README)."""
    with psycopg.connect(meta_dsn) as c:
        first_queued, run_end, runs, ok = c.execute(
            "SELECT min(queued_at), max(end_date), count(*), count(*) FILTER (WHERE state = 'success')"
            " FROM dag_run WHERE dag_id LIKE %s", (EXPORT_LIKE,)).fetchone()
        last_status = c.execute("SELECT max(end_date) FROM task_instance WHERE task_id = 'write_statuses'"
                                " AND dag_id LIKE %s", (EXPORT_LIKE,)).fetchone()[0]
        scheduled = "scheduled_dttm" in _columns(c, "task_instance")
        union = ("SELECT dag_id, task_id, state, duration, queued_dttm, start_date, end_date"
                 + (", scheduled_dttm" if scheduled else ", NULL::timestamptz AS scheduled_dttm")
                 + " FROM {t} WHERE start_date IS NOT NULL")
        # A deferred task resumed is queued again after its first start: such negative lags count as 0.
        lag = "greatest(extract(epoch FROM start_date - queued_dttm), 0)"
        rows = c.execute(f"SELECT task_id, count(*), coalesce(sum(duration), 0),"
                         f" coalesce(sum({lag}), 0),"
                         f" coalesce(sum(greatest(extract(epoch FROM queued_dttm - scheduled_dttm), 0)), 0),"
                         f" percentile_cont(0.95) WITHIN GROUP (ORDER BY {lag})"
                         f" FROM ({union.format(t='task_instance')} UNION ALL"
                         f" {union.format(t='task_instance_history')}) t"
                         f" GROUP BY task_id ORDER BY 3 DESC").fetchall()
    with psycopg.connect(dsn) as c:
        states = dict(c.execute("SELECT state, count(*) FROM iemk.ledger GROUP BY state").fetchall())
    wall = (last_status - first_queued).total_seconds() if last_status and first_queued else float("nan")
    documents = sum(states.values())
    # The reply wait defers (its slot is free meanwhile): not counted as slot time.
    busy = sum(float(r[2]) for r in rows if r[0] != "wait_for_replies")
    tasks = {r[0]: {"tries": r[1], "seconds": round(float(r[2]), 1), "queued_to_start_s": round(float(r[3]), 1),
                    "scheduled_to_queued_s": round(float(r[4]), 1), "p95_queued_to_start_s": round(float(r[5] or 0), 2)}
             for r in rows}
    return {"wall_s": round(wall, 1), "run_end_s": round((run_end - first_queued).total_seconds(), 1),
            "runs": runs, "runs_ok": ok, "ledger": states, "documents": documents,
            "documents_per_s": round(documents / wall, 1) if wall else None,
            "stored_per_s": round(states.get("stored", 0) / wall, 1) if wall else None,
            "task_tries": sum(r[1] for r in rows), "slot_seconds": round(busy, 1),
            "idle_slot_share": round(1 - busy / (wall * parallelism), 3) if wall else None,
            "queued_to_start_s": round(sum(float(r[3]) for r in rows), 1),
            "scheduled_to_queued_s": round(sum(float(r[4]) for r in rows), 1), "tasks": tasks}


def _memory(sampler: MemorySampler) -> dict[str, Any]:
    peak, largest = (sampler.window_peak, sampler.window_largest) if sampler.window_peak else (
        sampler.peak, sampler.largest)
    return {"samples": sampler.samples, "peak_rss_mb": round(peak["rss"]), "peak_pss_mb": round(peak["pss"]),
            "peak_pss_by_role_mb": {k.split(":", 1)[1]: round(v) for k, v in sorted(peak.items())
                                    if k.startswith("pss:")},
            "peak_rss_by_role_mb": {k.split(":", 1)[1]: round(v) for k, v in sorted(peak.items())
                                    if k.startswith("rss:")},
            "largest_process_mb": round(largest[0]), "largest_process": largest[1],
            "peak_processes": int(peak["processes"]),
            "overall_peak_rss_mb": round(sampler.peak["rss"]), "overall_peak_pss_mb": round(sampler.peak["pss"])}


def parse_cost(mo_count: int, repeat: int) -> float | None:
    """Median seconds a task process spends parsing the DAG file for one task (bench_dag_parse's "one task")."""
    import bench_dag_parse

    if repeat < 1:
        return None
    with tempfile.TemporaryDirectory(prefix="bench-region-parse-") as tmp:
        config = Path(tmp) / "mo.json"
        bench_dag_parse._mo_config(config, mo_count)
        env = {**os.environ, "IEMK_MO_CONFIG": str(config), "IEMK_HOME": tmp, "AIRFLOW_HOME": tmp,
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "IEMK_MO_SOURCES": "file",
               "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "iemk_export__mo000", "_AIRFLOW_PARSING_CONTEXT_TASK_ID": "send"}
        return statistics.median(bench_dag_parse._sample(env)["seconds"] for _ in range(repeat))


# -- output -------------------------------------------------------------------------------------------------

def report(label: str, r: dict[str, Any], parse_s: float | None) -> None:
    mem = r["memory"]
    parse_total = parse_s * r["task_tries"] if parse_s is not None else None
    r["parse_per_task_s"] = parse_s
    r["parse_share"] = (round(parse_total / (r["wall_s"] * r["parallelism"]), 3)
                       if parse_total is not None and r["wall_s"] else None)
    lines = [
        f"== {label} ==",
        f"МО {r['mo']}; documents in the ledger {r['documents']} (seeded signed {r['documents_seeded']},"
        f" {r['seeded_mb']} MB); ledger states {r['ledger']}; runs {r['runs_ok']}/{r['runs']} success",
        f"wall (first dag_run queued_at → last write_statuses end_date) {r['wall_s']} s"
        f" (→ last export dag_run end_date {r['run_end_s']} s); parallelism {r['parallelism']}",
        f"documents/s {r['documents_per_s']} (stored/s {r['stored_per_s']})",
        f"task tries {r['task_tries']}; slot seconds (Σ durations, reply wait excluded) {r['slot_seconds']};"
        f" idle slot share 1 − Σ/(wall × parallelism) = {r['idle_slot_share']}",
        f"Σ queued→start {r['queued_to_start_s']} s; Σ scheduled→queued {r['scheduled_to_queued_s']} s"
        + (f"; parse per task {parse_s:.3f} s × {r['task_tries']} tries = {parse_total:.0f} s,"
           f" share of slot capacity {r['parse_share']}" if parse_s is not None else ""),
        f"peak memory in the night: Σ RSS {mem['peak_rss_mb']} MB, Σ PSS {mem['peak_pss_mb']} MB"
        f" ({mem['peak_processes']} processes at most); by role (PSS) {mem['peak_pss_by_role_mb']};"
        f" largest process {mem['largest_process_mb']} MB RSS ({mem['largest_process']})",
        "| task | tries | Σ s | Σ queued→start s | p95 queued→start s |",
        "|---|---|---|---|---|",
    ] + [f"| {t} | {v['tries']} | {v['seconds']} | {v['queued_to_start_s']} | {v['p95_queued_to_start_s']} |"
         for t, v in r["tasks"].items()]
    print("\n".join(lines), flush=True)
    print("JSON " + json.dumps({"label": label, **r}, ensure_ascii=False, default=str), flush=True)


def summary(rows: list[tuple[str, dict[str, Any]]]) -> None:
    print("\n| night | МО | documents | wall s | documents/s | idle slot share | parse share | Σ RSS MB | Σ PSS MB"
          " | tasks PSS MB | largest process MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, r in rows:
        m = r["memory"]
        print(f"| {label} | {r['mo']} | {r['documents']} | {r['wall_s']} | {r['documents_per_s']} |"
              f" {r['idle_slot_share']} | {r.get('parse_share')} | {m['peak_rss_mb']} | {m['peak_pss_mb']} |"
              f" {m['peak_pss_by_role_mb'].get('tasks', 0)} | {m['largest_process_mb']} |")


# -- command line -------------------------------------------------------------------------------------------

def _night(args: argparse.Namespace, spec: Spec, prevalidated: bool) -> dict[str, Any]:
    return Night(args.cache, spec, prevalidated, args.parallelism, args.timeout, args.emulator_workers,
                 args.keep, args.flk_processes, args.heartbeat_interval).run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "iemk-bench-region",
                   help="embedded PostgreSQL data, key store and seeded templates (kept between runs)")
    p.add_argument("--parallelism", type=int, default=os.cpu_count() or 1, help="Airflow core.parallelism")
    p.add_argument("--timeout", type=float, default=7200, help="seconds a night may take")
    p.add_argument("--emulator-workers", type=int, default=1)
    # 1, the default in task processes: the mapped validate tasks put the cores to work (benchmarks/README.md).
    p.add_argument("--flk-processes", type=int, default=1, help="IEMK_FLK_PROCESSES of the task processes")
    p.add_argument("--heartbeat-interval", type=int, default=1,
                   help="Airflow [workers] min_heartbeat_interval (Airflow's default is 5; README: region scale)")
    p.add_argument("--parse-samples", type=int, default=3, help="fresh processes timing one task's DAG parse")
    p.add_argument("--keep", action="store_true",
                   help="keep the run's databases (run_<key>, airflow_<key>) and its work folder (logs)")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("seed", "night"):
        s = sub.add_parser(name)
        s.add_argument("--mo", type=int, default=1)
        s.add_argument("--per-mo", type=int, default=200, help="documents each МО (about: whole patients)")
        s.add_argument("--big-count", type=int, default=0)
        s.add_argument("--big-mb", type=float, default=50)
        s.add_argument("--prevalidate" if name == "seed" else "--prevalidated", action="store_true",
                       dest="prevalidated")
    s = sub.add_parser("suite", help="the issue's nights")
    s.add_argument("--documents", type=int, default=20000, help="one МО's night (full ФЛК and pre-validated)")
    s.add_argument("--mo", type=int, default=200)
    s.add_argument("--per-mo", type=int, default=100, help="the region night")
    s.add_argument("--sizes", default="2000,20000", help="the region night again with these totals (RSS)")
    s.add_argument("--big-count", type=int, default=8)
    s.add_argument("--big-mb", type=float, default=50)
    s.add_argument("--seed-only", action="store_true", help="make the nights' templates (cached) and stop")
    args = p.parse_args(argv)
    packs = os.environ.get("IEMK_SEMD_PACKS")
    if not packs:
        p.error("set IEMK_SEMD_PACKS (the packs the exporter's ФЛК checks against), e.g. /work/shared/semd-packs")
    os.environ["IEMK_HOME"] = str(args.cache / "home")
    os.environ["IEMK_LOGICAL_CONTROL"] = "1"       # the pre-validation is the full ФЛК too
    args.cache.mkdir(parents=True, exist_ok=True)
    # SIGTERM as Ctrl-C: the finally blocks stop every child process group and the database server.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _command(args)
    finally:
        from iemk_etl.store import embedded_pg

        embedded_pg.stop(args.cache / "home")      # the data stay in the cache; the server does not outlive us


def _command(args: argparse.Namespace) -> int:
    if args.command == "seed":
        spec = Spec(args.mo, args.per_mo, args.big_count, args.big_mb)
        print(json.dumps(seed(args.cache, spec, prevalidate=args.prevalidated), ensure_ascii=False))
        return 0
    if args.command == "night":
        spec = Spec(args.mo, args.per_mo, args.big_count, args.big_mb)
        label = spec.key + (" pre-validated" if args.prevalidated else "")
        result = _night(args, spec, args.prevalidated)
        report(label, result, parse_cost(result["mo"], args.parse_samples))
        summary([(label, result)])
        return 0
    nights = [(f"1 МО × {args.documents}, full ФЛК", Spec(1, args.documents), False),
              (f"1 МО × {args.documents}, pre-validated", Spec(1, args.documents), True),
              (f"{args.mo} МО × {args.per_mo}", Spec(args.mo, args.per_mo), False)]
    for total in (int(t) for t in args.sizes.split(",") if t):
        if total != args.mo * args.per_mo:
            nights.append((f"{args.mo} МО, {total} documents", Spec(args.mo, max(1, total // args.mo)), False))
    nights.append((f"{args.big_count} × {args.big_mb} MB", Spec(1, 0, args.big_count, args.big_mb), False))
    if args.seed_only:
        for label, spec, prevalidated in nights:
            say(f"--- seed for {label}")
            seed(args.cache, spec, prevalidate=prevalidated)
        return 0
    rows, failed = [], []
    for label, spec, prevalidated in nights:
        say(f"--- {label}")
        try:
            result = _night(args, spec, prevalidated)
        except RuntimeError as exc:         # a night that times out or loses a component: the others still run
            say(f"night {label!r} FAILED: {exc}")
            failed.append(label)
            continue
        report(label, result, parse_cost(result["mo"], args.parse_samples))
        rows.append((label, result))
    summary(rows)
    if failed:
        print(f"failed nights: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
