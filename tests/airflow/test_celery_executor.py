"""The export DAG end to end on the CeleryExecutor, every component a real process on loopback.

`airflow api-server` (the task SDK's Execution API), `airflow scheduler`, `airflow dag-processor`, `airflow triggerer`
and one `airflow celery worker`; the metadata database and the Celery broker (kombu's SQLAlchemy transport) and
result backend on the embedded PostgreSQL, no Docker. The worker has an AIRFLOW_HOME, IEMK_HOME and working folder
of its own and no file of the others: the МО list comes from the Airflow Variable ``iemk_mo_list``, the МИС database
from the connection ``IEMK_SOURCE_CONN_ID``, the request-signing key from the connection ``iemk_sign__<mo>``, ИЭМК's
address and the packs from its environment. Marked ``cluster`` (deselect locally with ``-m "not cluster"``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from lxml import etree
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.protocol import snils
from iemk_etl.semd.header import unique_id
from iemk_etl.store import integration

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
END = dt.date(2026, 11, 11)                    # one seeded day: 11-10
DAY = END - dt.timedelta(days=1)
GKB_OID, GKB = demo_data.DEMO_MO[0][0], demo_data.DEMO_MO[0][1]
DAG_ID = f"iemk_export__{GKB}"
RUN_ID = "celery_export_1"
SAVED = "Сохранен в ИЭМК"
# Variables a test process may carry that would hand the worker a file or a value it must find elsewhere.
NOT_INHERITED = ("IEMK_SOURCE_DSN", "IEMK_SOURCE_CONN_ID", "IEMK_MO_CONFIG", "IEMK_SIGN_CERT", "IEMK_SIGN_KEY",
                 "IEMK_KEYS_DIR", "IEMK_HOME", "IEMK_URL", "IEMK_CALLBACK_URL", "AIRFLOW_HOME", "AIRFLOW_CONFIG")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fresh(pg_template: str, name: str, template: str | None) -> str:
    with psycopg.connect(pg_template, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return make_conninfo(pg_template, dbname=name)


@dataclass
class Cluster:
    dsn: str                 # the МИС and ledger database
    meta: str                # Airflow's metadata database (and the broker's tables)
    env: dict[str, str]      # the scheduler side's environment, for CLI calls
    logs: Path
    worker_home: Path
    emulator: object
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def airflow(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"airflow {shlex.join(args)}:\n{done.stdout}\n{done.stderr}\n{self.tails()}"
        return done.stdout

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}"

    def api(self, method: str, path: str, body: dict) -> dict:
        import httpx

        answer = httpx.request(method, f"{self.api_url}/api/v2{path}", json=body, timeout=60)
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path) -> None:
        with (self.logs / f"{name}.log").open("wb") as out:
            # A session of its own: the whole process group (task supervisors, pool children) is stopped at the end.
            self.procs[name] = subprocess.Popen([str(BIN / "airflow"), *args], env=env, cwd=cwd, stdout=out,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def tails(self, chars: int = 3000) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")) + sorted((self.worker_home / "logs").rglob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"----- {path} (last {chars} chars)\n{text[-chars:]}")
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        return f"exited processes: {dead}\n" + "\n".join(parts)

    def wait(self, what: str, probe: Callable[[], object], timeout: float) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                result = probe()
            except psycopg.Error:
                result = None
            if result:
                return result
            exited = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            assert not exited, f"a component exited while waiting for {what}: {exited}\n{self.tails()}"
            time.sleep(1)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.tails()}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5       # then SIGKILL: nothing of theirs outlives the test
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)      # stragglers of the group, even if the leader is gone
            except ProcessLookupError:
                pass
            proc.wait()


def _base_env(meta: str, api_port: int) -> dict[str, str]:
    from cryptography.fernet import Fernet

    socket_dir, dbname = conninfo_to_dict(meta)["host"], conninfo_to_dict(meta)["dbname"]
    url = f"postgresql+psycopg://postgres@/{dbname}?host={socket_dir}"
    env = {k: v for k, v in os.environ.items()
           if k not in NOT_INHERITED and not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "_AIRFLOW_"))}
    return {**env,
            "PATH": f"{BIN}:{env.get('PATH', '')}",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "AIRFLOW__CELERY__BROKER_URL": f"sqla+{url}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{url}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Every component must agree on these; each has its own AIRFLOW_HOME, so none may come from a
            # generated airflow.cfg.
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(32).hex(),
            "AIRFLOW__API__SECRET_KEY": os.urandom(16).hex(),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "IEMK_MO_SOURCES": "variable",
            # No scheduled run when the DAG is unpaused: the one run is the one triggered below.
            "IEMK_START_DATE": "2099-01-01",
            "IEMK_REPLY_POKE_SECONDS": "2",
            }


@pytest.fixture(scope="module")
def cluster(pg_template, dev_keys, flk_packs, tmp_root) -> Iterator[Cluster]:
    dsn = _fresh(pg_template, "iemk_celery", "iemk_template")
    meta = _fresh(pg_template, "airflow_celery", None)
    with psycopg.connect(dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=6, days=1, seed=14, end=END, fail_share=0.5)
        integration.set_enabled(conn, GKB_OID, True)
        mo = integration.resolve_mo(conn, GKB_OID)
    base = tmp_root / "celery"
    homes = {name: base / name for name in ("scheduler-side", "worker-side", "logs")}
    for path in homes.values():
        path.mkdir(parents=True)
    api_port = _free_port()
    common = _base_env(meta, api_port)
    # The REST calls of the test (setup, trigger) need no login: a throwaway api-server on loopback.
    central = {**common, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
               "AIRFLOW_HOME": str(homes["scheduler-side"] / "airflow"),
               "IEMK_HOME": str(homes["scheduler-side"] / "iemk")}
    socket_dir = conninfo_to_dict(dsn)["host"]
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05), dsn) as emulator:
        from iemk_etl.transport.callback import CallbackServer

        with CallbackServer(dsn) as callback:
            # What every component that may run task code gets (the worker; the triggerer, should a wait defer):
            # names and addresses, no file.
            service = {"IEMK_SOURCE_CONN_ID": "iemk_source", "IEMK_URL": emulator.url,
                       "IEMK_CALLBACK_URL": callback.url}
            central.update(service)
            worker_env = {**common, **service,
                          "AIRFLOW_HOME": str(homes["worker-side"] / "airflow"),
                          "IEMK_HOME": str(homes["worker-side"] / "iemk")}
            c = Cluster(dsn, meta, central, homes["logs"], homes["worker-side"] / "airflow", emulator.emulator)
            try:
                c.airflow("db", "migrate", timeout=180)
                # The project's setup (the pool iemk_api), as compose's airflow-init runs it after the migration.
                pool = subprocess.Popen([str(BIN / "python"), "-m", "iemk_airflow.setup", "--slots", "4"], env=central,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                c.start("api-server", ["api-server", "--port", str(api_port)], central, homes["scheduler-side"])
                c.start("scheduler", ["scheduler"], central, homes["scheduler-side"])
                c.start("celery-worker", ["celery", "worker", "--concurrency", "2", "--celery-hostname",
                                          "iemk-test-worker@%h", "--without-mingle", "--without-gossip"],
                        worker_env, homes["worker-side"])
                c.wait("the api-server", lambda: _answers(f"{c.api_url}/api/v2/monitor/health"), 180)
                _setup(c, mo, dev_keys, socket_dir, conninfo_to_dict(dsn)["dbname"])
                out, _ = pool.communicate(timeout=120)
                assert pool.returncode == 0, out
                c.start("dag-processor", ["dag-processor"], central, homes["scheduler-side"])
                c.start("triggerer", ["triggerer"], central, homes["scheduler-side"])
                # The api-server builds its Execution API on the first call (≈10 s here): made now, while the
                # dag-processor parses, rather than by the first task, whose client would time out and retry.
                c.wait("the api-server's Execution API", lambda: _answers(f"{c.api_url}/execution/health"), 120)
                yield c
            finally:
                c.stop()


def _setup(c: Cluster, mo: integration.MoEntry, dev_keys: tuple[Path, Path], socket_dir: str, dbname: str) -> None:
    """What an operator puts into Airflow once (`airflow variables set`, `connections add`; here through the REST
    API, which stores the same rows without seconds of CLI start-up each): the МО list and the connections, in the
    metadata database, so the worker gets them through the Execution API."""
    cert, key = dev_keys
    c.api("POST", "/variables", {"key": "iemk_mo_list", "value": json.dumps({"mo": [mo.__dict__]}, ensure_ascii=False)})
    c.api("POST", "/connections", {"connection_id": f"iemk_sign__{GKB}", "conn_type": "generic",
                                   "extra": json.dumps({"cert": cert.read_text(), "private_key": key.read_text()})})
    c.api("POST", "/connections", {"connection_id": "iemk_source", "conn_type": "postgres", "host": socket_dir,
                                   "schema": dbname, "login": "postgres"})


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=30).status_code == 200
    except httpx.HTTPError:
        return False


def _has_document_code(xml: str) -> bool:
    return etree.fromstring(xml.encode()).find("{urn:hl7-org:v3}code") is not None


def test_the_export_runs_on_a_celery_worker_with_everything_from_airflow(cluster):
    c = cluster

    def dag_parsed():
        with psycopg.connect(c.meta) as conn:
            return conn.execute("SELECT 1 FROM dag WHERE dag_id = %s", (DAG_ID,)).fetchone()

    c.wait(f"the dag-processor to parse {DAG_ID} from the Variable iemk_mo_list", dag_parsed, 120)
    c.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
    c.api("POST", f"/dags/{DAG_ID}/dagRuns", {"dag_run_id": RUN_ID, "logical_date": None,
                                              "conf": {"from": DAY.isoformat(), "to": DAY.isoformat()}})

    def run_finished():
        with psycopg.connect(c.meta) as conn:
            row = conn.execute("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s",
                               (DAG_ID, RUN_ID)).fetchone()
        return row if row and row[0] in ("success", "failed") else None

    (state,) = c.wait("the export run to finish", run_finished, 300)
    assert state == "success", c.tails()

    with psycopg.connect(c.meta) as conn:
        tis = conn.execute(
            "SELECT task_id, state, external_executor_id, queue FROM task_instance WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, RUN_ID)).fetchall()
    ran = [t for t in tis if t[1] == "success"]
    assert {"extract", "validate", "send", "write_statuses"} <= {t[0] for t in ran}, tis
    for task_id, _, celery_id, queue in ran:
        assert celery_id and queue == "default", (task_id, celery_id, queue)
    celery_ids = {t[2] for t in ran}

    def celery_results():
        # Each task went through the broker as a Celery task and our worker stored its result; the last result
        # may land a moment after the task told the api-server it succeeded.
        with psycopg.connect(c.meta) as conn:
            done = {r[0] for r in conn.execute("SELECT task_id FROM celery_taskmeta WHERE status = 'SUCCESS'")}
        return celery_ids <= done

    c.wait("the Celery results of every task", celery_results, 30)
    worker_log = (c.logs / "celery-worker.log").read_text(errors="replace")
    assert all(celery_id in worker_log for celery_id in celery_ids), "a task the worker log does not name"
    task_logs = {part for p in (c.worker_home / "logs").rglob("*.log") if f"dag_id={DAG_ID}" in str(p)
                 for part in p.parts if part.startswith("task_id=")}
    assert {f"task_id={t[0]}" for t in ran} <= task_logs, task_logs

    with psycopg.connect(c.dsn) as conn:
        docs = conn.execute(
            "SELECT d.local_uid, d.status, convert_from(d.cda, 'UTF8'), p.snils FROM mis.semd_document d"
            " JOIN mis.patient p ON p.id = d.patient_id WHERE d.mo_oid = %s AND d.signed_at IS NOT NULL",
            (GKB_OID,)).fetchall()
        ledger_saved = conn.execute(
            "SELECT count(*) FROM iemk.ledger l JOIN mis.semd_document d ON d.id = l.document_id"
            " WHERE d.mo_oid = %s AND l.state = 'stored'", (GKB_OID,)).fetchone()[0]
    # The demo's intended failures: no ClinicalDocument/code (format control), a bad СНИЛС check digit (НСИ).
    failing = {uid for uid, _, xml, patient_snils in docs
               if not _has_document_code(xml) or not snils.is_valid(patient_snils)}
    saved = {uid for uid, status, _, _ in docs if status == SAVED}
    assert docs and saved
    assert saved == {uid for uid, _, _, _ in docs} - failing, [(uid, s) for uid, s, _, _ in docs]
    assert ledger_saved == len(saved)
    assert {unique_id(GKB_OID, uid) for uid in saved} <= set(c.emulator.store.received_unique_ids())
