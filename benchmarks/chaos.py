"""The chaos run (issue 11): every document exactly once through crashes, outages and lost answers.

Everything is real and runs as separate OS processes started here, so each can be SIGKILLed:
an embedded PostgreSQL of its own (stopped and started mid-run), the ИЭМК emulator with a fault profile of every
kind it has, the callback receiver, and the exporter (``iemk-etl export``, the Airflow DAGs via dag.test) killed
with SIGKILL in every stage. The stage a kill lands in is read from the run's own Airflow metadata database (the
task instance that is running), so the kills are counted per stage: extract, validate, send (its chunk's patient
feed first, then its documents), wait, lost answers and write back. Then, with faults off, nightly reruns until the
ledger's state counts stop changing, and a summary from the emulator's registry and the ledger. Exit 1 when a
document was lost, registered twice, or a МИС status differs from its ledger state.

    .venv/bin/python benchmarks/chaos.py [--documents N] [--short] [--seed S]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from iemk_etl.store import embedded_pg  # noqa: E402
from iemk_etl.store.ledger import visible_status  # noqa: E402

IEMK = [sys.executable, "-c", "import sys; from iemk_etl.cli import main; sys.exit(main())"]
CLIENT_ENTITY_ID = "17c74e63-dc38-438d-a27a-a1aa063ee7b8"  # the demo's test system; the emulator accepts any
# Airflow task id → the stage the summary names.
STAGES = {"check_integration": "extract", "extract": "extract", "validate": "validate",
          "send": "send", "wait_for_replies": "wait",
          "write_statuses": "lost answers, write back"}
KILL_STAGES = ("extract", "validate", "send", "wait_for_replies", "write_statuses")
SYNC = ("http_500", "http_503", "reset", "malformed", "rate_limit")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fault_profile(seed: int, scale: float) -> dict[str, object]:
    """Every kind the emulator has, on ITI-41, PIX and the registry's ITI-18; ``scale`` multiplies the rates."""
    sync = {k: round(0.03 * scale, 4) for k in SYNC}
    return {"seed": seed, "operations": {
        "iti41": {**sync, "retry_after": 1, "slow": round(0.06 * scale, 4), "latency_ms": [50, 400],
                  "registry_busy": round(0.05 * scale, 4), "lost_reply": round(0.04 * scale, 4),
                  "duplicate_reply": round(0.05 * scale, 4), "out_of_order": round(0.10 * scale, 4)},
        "pix": {**sync, "retry_after": 1, "slow": round(0.05 * scale, 4), "latency_ms": [50, 300]},
        "iti18": {**sync, "retry_after": 1, "slow": round(0.05 * scale, 4), "latency_ms": [50, 300]},
    }}


@dataclass
class Service:
    """One child process in its own process group (so SIGKILL takes its children too), output to a log file."""
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with self.log.open("ab") as out:
            out.write(f"\n--- start {time.strftime('%H:%M:%S')}: {' '.join(self.argv[3:])}\n".encode())
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if self.port:
            self._wait_listening()
        return self

    def _wait_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not listening on {self.port} after {timeout} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL to the whole process group: no clean-up code runs."""
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Chaos:
    args: argparse.Namespace
    work: Path
    rng: random.Random
    kills: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    exporter_exits: collections.Counter[str] = field(default_factory=collections.Counter)
    current: Service | None = None

    def __post_init__(self) -> None:
        self.home = self.work / "home"
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.dsn = embedded_pg.start(self.home)
        self.emulator_port, self.callback_port = free_port(), free_port()
        self.profile = self.work / "faults.json"
        self.env = {**os.environ,
                    "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]),
                    "IEMK_HOME": str(self.home), "IEMK_SOURCE_DSN": self.dsn, "IEMK_EMULATOR_DSN": self.dsn,
                    "IEMK_URL": f"http://127.0.0.1:{self.emulator_port}",
                    "IEMK_CALLBACK_URL": f"http://127.0.0.1:{self.callback_port}/ips/callback",
                    "IEMK_CLIENT_ENTITY_ID": CLIENT_ENTITY_ID,
                    "IEMK_REPLY_POKE_SECONDS": "1", "IEMK_REPLY_TIMEOUT_SECONDS": str(self.args.reply_timeout),
                    "IEMK_RETRY_LADDER": self.args.ladder, "IEMK_LOST_ANSWER_HOURS": str(self.args.lost_hours),
                    "IEMK_LOGICAL_CONTROL": "1" if self.args.logical_control else "0",
                    "IEMK_HTTP_TIMEOUT": "10", "IEMK_TASK_RETRY_SECONDS": "2"}
        self.env.pop("IEMK_EMULATOR_FAULTS", None)
        self.emulator = Service("emulator", [], self.env, self.logs / "emulator.log", self.emulator_port)
        self.callback = Service("callback", [*IEMK, "callback", "serve", "--port", str(self.callback_port)],
                                self.env, self.logs / "callback.log", self.callback_port)

    # -- set-up ---------------------------------------------------------------------------------------------

    def iemk(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*IEMK, *argv], env=self.env, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"iemk-etl {' '.join(argv)}: {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def seed(self) -> None:
        per_patient = 2.9  # measured: signed documents a generated patient has over the period, whatever its length
        patients = max(4, round(self.args.documents / per_patient))
        self.end = dt.date.today()
        self.first, self.last = self.end - dt.timedelta(days=self.args.days), self.end - dt.timedelta(days=1)
        out = self.iemk("db", "seed", "--patients", str(patients), "--days", str(self.args.days),
                        "--fail-share", "0.1", "--seed", str(self.args.seed), "--end", self.end.isoformat())
        say(f"МИС: {out.stdout.strip()} ({patients} patients, {self.args.days} days)")
        with psycopg.connect(self.dsn) as conn:
            mo = [r[0] for r in conn.execute("SELECT oid FROM mis.mo ORDER BY oid")]
        for oid in mo:
            self.iemk("integration", "enable", "--mo", oid)
        say(f"integration enabled for {len(mo)} МО")

    def start_emulator(self, faults: bool) -> None:
        argv = [*IEMK, "emulator", "serve", "--port", str(self.emulator_port), "--reply-delay", "0.2",
                "--require-registered-patient"]
        if faults:
            argv += ["--faults", str(self.profile)]
        self.emulator.argv = argv
        self.emulator.start()

    def postgres(self, action: str) -> None:
        """Stop or start the embedded server from a fresh process (the package caches its handle per process)."""
        code = (f"from pathlib import Path; from iemk_etl.store import embedded_pg;"
                f" embedded_pg.{action}(Path({str(self.home)!r}))")
        subprocess.run([sys.executable, "-c", code], env=self.env, check=True, capture_output=True)

    # -- the exporter and where it is -------------------------------------------------------------------------

    def exporter(self) -> Service:
        argv = [*IEMK, "export", "--mo", "all", "--from", self.first.isoformat(), "--to", self.last.isoformat()]
        return Service("exporter", argv, self.env, self.logs / "exporter.log")

    def running_tasks(self) -> list[tuple[str, str, str]]:
        """(dag run, task id) of the task instances running now, from the newest Airflow home of an export."""
        homes = sorted((self.home / "airflow-runs").glob("airflow-*/airflow.db"), key=lambda p: p.stat().st_mtime)
        if not homes:
            return []
        try:
            with contextlib.closing(sqlite3.connect(f"file:{homes[-1]}?mode=ro", uri=True, timeout=0.5)) as db:
                return db.execute("SELECT dag_id, run_id, task_id FROM task_instance"
                                  " WHERE state = 'running'").fetchall()
        except sqlite3.Error:
            return []

    def stage_now(self) -> str:
        tasks = self.running_tasks()
        if tasks:
            return STAGES.get(tasks[0][2], tasks[0][2])
        return self.ledger_stage()

    def ledger_stage(self) -> str:
        """No task running (between tasks, or Airflow starting): the stage the ledger says the run is in."""
        with contextlib.suppress(psycopg.Error), psycopg.connect(self.dsn, connect_timeout=3) as conn:
            states = dict(conn.execute("SELECT state, count(*) FROM iemk.ledger WHERE updated_at > now() -"
                                       " interval '3 seconds' GROUP BY state").fetchall())
            if "queued" in states:
                return "validate"
            if "valid" in states:
                return "send"
            if "sent" in states:
                return "wait"
            return "between tasks"
        return "database down"

    def export_once(self, actions: list[tuple[str, str, int]], timeout: float) -> None:
        """One export run; ``actions``: (task id that triggers it, what to do, occurrences of it to let pass first).
        What to do: kill the exporter (ends the run), restart the emulator or the callback receiver, restart
        PostgreSQL."""
        proc = self.current = self.exporter().start()
        pending, seen, deadline = list(actions), set(), time.monotonic() + timeout
        while proc.proc and proc.proc.poll() is None:
            if time.monotonic() > deadline:
                say("exporter over its time: killed (not counted as a chaos kill)")
                proc.kill()
                break
            if pending:
                trigger, what, skip = pending[0]
                for dag_id, run_id, task_id in self.running_tasks():
                    if task_id == trigger and (dag_id, run_id, task_id) not in seen:
                        seen.add((dag_id, run_id, task_id))
                        if skip > 0:
                            pending[0] = (trigger, what, skip - 1)
                        else:
                            # extract, validate (Schematron off) and write back last a blink: kill at once;
                            # elsewhere at a random point inside
                            instant = trigger in ("extract", "validate", "write_statuses")
                            time.sleep(0 if instant else self.rng.uniform(0, 0.1))
                            self.act(what, proc)
                            pending.pop(0)
                        break
            time.sleep(0.05)
        code = proc.proc.wait() if proc.proc else -1
        self.exporter_exits["killed" if code == -signal.SIGKILL else f"exit {code}"] += 1

    def act(self, what: str, exporter: Service) -> None:
        stage = self.stage_now()
        if what == "exporter":
            exporter.kill()
            say(f"SIGKILL exporter in stage «{stage}»")
        elif what in ("emulator", "callback"):
            service = self.emulator if what == "emulator" else self.callback
            service.kill()
            down = self.rng.uniform(1, 5)
            say(f"SIGKILL {what} (exporter in «{stage}»), down {down:.1f} s")
            time.sleep(down)
            service.start()
        elif what == "postgres":
            say(f"PostgreSQL stopped (exporter in «{stage}»)")
            self.postgres("stop")
            time.sleep(self.rng.uniform(1, 4))
            self.postgres("start")
            say("PostgreSQL started")
        self.kills[(what, stage)] += 1

    def plan(self) -> list[list[tuple[str, str, int]]]:
        """Export runs and what happens in each. Every stage gets exporter kills; the emulator, the callback
        receiver and PostgreSQL are restarted while the exporter sends or waits."""
        if self.args.short:
            return [[("send", "exporter", 0)],
                    [("send", "emulator", 0), ("wait_for_replies", "postgres", 0)],
                    [("validate", "callback", 0), ("send", "exporter", 1)]]
        runs: list[list[tuple[str, str, int]]] = []
        day_runs = 2 * self.args.days
        stages = list(KILL_STAGES) * self.args.kills_per_stage
        self.rng.shuffle(stages)
        side = (["emulator"] * 4 + ["callback"] * 4 + ["postgres"] * 3)
        for n, stage in enumerate(stages):
            actions: list[tuple[str, str, int]] = []
            if n < len(side):
                actions.append((self.rng.choice(("send", "wait_for_replies", "validate")),
                                side[n], self.rng.randrange(day_runs // 2)))
            actions.append((stage, "exporter", self.rng.randrange(day_runs)))
            runs.append(actions)
        return runs

    # -- the phases -----------------------------------------------------------------------------------------------

    def chaos_phase(self) -> None:
        runs = self.plan()
        say(f"chaos phase: {len(runs)} export runs with kills")
        for n, actions in enumerate(runs, 1):
            say(f"export run {n}/{len(runs)}: {actions}")
            self.export_once(actions, timeout=self.args.run_timeout)

    def reruns(self) -> int:
        """Nightly reruns without faults until the ledger's state counts stop changing (and nothing is due)."""
        self.emulator.terminate()
        self.start_emulator(faults=False)
        say("faults off: emulator restarted without its fault profile")
        previous, changed_at, n = None, time.monotonic(), 0
        settle = self.args.lost_hours * 3600 + 10
        while n < self.args.max_reruns:
            n += 1
            self.export_once([], timeout=self.args.run_timeout)
            counts = self.state_counts()
            say(f"rerun {n}: {counts}")
            open_rows = sum(v for k, v in counts.items() if k in ("queued", "valid", "sent"))
            if counts != previous:
                previous, changed_at = counts, time.monotonic()
                continue
            if open_rows == 0 or time.monotonic() - changed_at > settle:
                break
            time.sleep(min(settle, 10))
        return n

    def state_counts(self) -> dict[str, int]:
        with psycopg.connect(self.dsn) as conn:
            return dict(conn.execute("SELECT state, count(*) FROM iemk.ledger GROUP BY state ORDER BY state"))

    # -- the summary ------------------------------------------------------------------------------------------------

    def summary(self, reruns: int, started: float) -> int:
        from iemk_etl.emulator.store import Store

        store = Store(self.dsn)
        injected = store.injected_by_kind()
        store.close()
        tz_start, tz_end = self.first.isoformat(), self.end.isoformat()
        with psycopg.connect(self.dsn) as conn:
            q = conn.execute
            signed = q("SELECT count(*) FROM mis.semd_document WHERE signed_at IS NOT NULL"
                       " AND signed_at >= %s::date AND signed_at < %s::date", (tz_start, tz_end)).fetchone()[0]
            by_kind = dict(q("SELECT kind_code, count(*) FROM mis.semd_document WHERE signed_at IS NOT NULL"
                             " GROUP BY kind_code ORDER BY kind_code").fetchall())
            no_row = q("SELECT d.id FROM mis.semd_document d WHERE d.signed_at IS NOT NULL AND d.signed_at >= %s::date"
                       " AND d.signed_at < %s::date AND NOT EXISTS (SELECT 1 FROM iemk.ledger l"
                       " WHERE l.document_id = d.id)", (tz_start, tz_end)).fetchall()
            # The registry holds it but the ledger says otherwise, or the ledger says stored and the registry lacks it.
            held_not_stored = q("SELECT l.id, l.state FROM iemk.ledger l JOIN emulator.document e"
                                " ON e.unique_id = l.unique_id WHERE l.state <> 'stored'").fetchall()
            stored_not_held = q("SELECT l.id FROM iemk.ledger l WHERE l.state = 'stored' AND NOT EXISTS"
                                " (SELECT 1 FROM emulator.document e WHERE e.unique_id = l.unique_id)").fetchall()
            stored_once = q("SELECT count(*) FROM iemk.ledger l JOIN emulator.document e"
                            " ON e.unique_id = l.unique_id WHERE l.state = 'stored'").fetchone()[0]
            # Registered twice: one uniqueId processed to Success by more than one submission, or the same document
            # content (hash) held under more than one registry entry.
            twice_uid = q("SELECT s.unique_id FROM emulator.submission s JOIN emulator.message m"
                          " ON m.message_id = s.message_id WHERE m.verdict = 'success'"
                          " GROUP BY s.unique_id HAVING count(*) > 1").fetchall()
            twice_content = q("SELECT content_hash FROM emulator.document GROUP BY content_hash"
                              " HAVING count(*) > 1").fetchall()
            ended = q("SELECT state, coalesce(error_code, '-'), count(*) FROM iemk.ledger"
                      " WHERE state IN ('invalid', 'rejected', 'failed') GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
            still_open = q("SELECT state, coalesce(error_code, '-'), coalesce(left(last_error, 90), '-'), count(*)"
                           " FROM iemk.ledger WHERE state IN ('queued', 'valid', 'sent') GROUP BY 1, 2, 3"
                           " ORDER BY 1, 2").fetchall()
            rows = q("SELECT l.id, l.document_id, l.state, l.last_error, l.error_code, d.status FROM iemk.ledger l"
                     " JOIN mis.semd_document d ON d.id = l.document_id").fetchall()
            ledger_rows = len(rows)
            rounds = q("SELECT count(*) FROM iemk.ledger_round").fetchone()[0]
            sample = q("SELECT l.document_id FROM iemk.ledger l JOIN iemk.audit_exchange a ON a.ledger_id = l.id"
                       " WHERE l.state = 'stored' GROUP BY l.document_id ORDER BY count(*) DESC, l.document_id"
                       " LIMIT 1").fetchone()
        mismatches = [(lid, doc, status, visible_status(state, err, code))
                      for lid, doc, state, err, code, status in rows if status != visible_status(state, err, code)]
        lost = len(no_row) + len(held_not_stored) + len(stored_not_held)
        twice = len(twice_uid) + len(twice_content)
        total_faults = sum(injected.values())
        print("\n==================== chaos run summary ====================")
        print(f"variant: {'short' if self.args.short else 'full'}; seed {self.args.seed}; "
              f"period {self.first} … {self.last}; {time.monotonic() - started:.0f} s")
        print(f"settings: IEMK_RETRY_LADDER={self.args.ladder} IEMK_LOST_ANSWER_HOURS={self.args.lost_hours} "
              f"IEMK_REPLY_TIMEOUT_SECONDS={self.args.reply_timeout} IEMK_LOGICAL_CONTROL="
              f"{1 if self.args.logical_control else 0} (ФЛК Schematron {'on' if self.args.logical_control else 'off'}"
              "), emulator reply delay 0.2 s, faults off for the reruns")
        print(f"documents total (signed in the МИС, in period): {signed}  by kind: {by_kind}")
        print(f"ledger rows: {ledger_rows}  (resend rounds kept: {rounds})")
        print(f"stored exactly once: {stored_once}")
        print(f"registered twice: {twice}  (uniqueIds with >1 successful submission: {len(twice_uid)};"
              f" content under >1 registry entry: {len(twice_content)})")
        print("ended in error (by state and code):")
        for state, code, n in ended:
            print(f"    {state:8} {code:28} {n}")
        print("still open (by state, code, reason):")
        for state, code, reason, n in still_open:
            print(f"    {state:8} {code:24} {n:5}  {reason}")
        if not still_open:
            print("    none")
        print(f"lost: {lost}  (signed without a ledger row: {len(no_row)}; held by the registry while the ledger"
              f" says otherwise: {len(held_not_stored)}; ledger stored, registry lacks it: {len(stored_not_held)})")
        for lid, state in held_not_stored[:10]:
            print(f"    ledger {lid}: {state}, registry holds it")
        print(f"faults injected: {total_faults}")
        for (operation, kind), n in sorted(injected.items()):
            print(f"    {operation:6} {kind:16} {n}")
        print(f"kills and restarts: {sum(self.kills.values())}  (exporter runs: {dict(self.exporter_exits)})")
        for (target, stage), n in sorted(self.kills.items()):
            print(f"    {target:9} in {stage:14} {n}")
        print(f"reruns needed: {reruns}")
        print(f"МИС status ≠ ledger state: {len(mismatches)}")
        for lid, doc, status, wanted in mismatches[:10]:
            print(f"    ledger {lid} document {doc}: МИС «{status}», ledger says «{wanted}»")
        if sample:
            audit = self.iemk("audit", "--document", str(sample[0]), check=False)
            print(f"\n`iemk-etl audit --document {sample[0]}` (exit {audit.returncode}):")
            print(audit.stdout.rstrip() or audit.stderr.rstrip())
        print(f"\nlogs: {self.logs}")
        return 1 if lost or twice or mismatches else 0

    def close(self) -> None:
        if self.current is not None:
            self.current.kill()
        self.callback.terminate()
        self.emulator.terminate()
        self.postgres("stop")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--short", action="store_true", help="the small variant (≈60 documents, 3 export runs)")
    p.add_argument("--documents", type=int, help="signed documents to generate (default 1100; short 60)")
    p.add_argument("--days", type=int, help="days of documents (default 5; short 2)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--kills-per-stage", type=int, default=3, help="exporter kills in each stage (full run)")
    p.add_argument("--fault-scale", type=float, help="multiplies the fault rates (default 1.5; short 1)")
    p.add_argument("--logical-control", action="store_true", help="Schematron ФЛК on (slow: ≈13 documents/s)")
    p.add_argument("--ladder", default="1s,2s,5s", help="IEMK_RETRY_LADDER for the run")
    p.add_argument("--lost-hours", type=float, default=0.01, help="IEMK_LOST_ANSWER_HOURS for the run")
    p.add_argument("--reply-timeout", type=int, default=20, help="IEMK_REPLY_TIMEOUT_SECONDS for the run")
    p.add_argument("--run-timeout", type=float, default=900, help="seconds one export run may take")
    p.add_argument("--max-reruns", type=int, default=12)
    p.add_argument("--keep", action="store_true", help="keep the work folder (database, logs)")
    args = p.parse_args(argv)
    args.documents = args.documents or (60 if args.short else 1100)
    args.days = args.days or (2 if args.short else 5)
    args.fault_scale = args.fault_scale if args.fault_scale is not None else (1.0 if args.short else 1.5)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # clean up the processes and the database server
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="iemk-chaos-"))
    work.chmod(0o755)  # as root the embedded server runs as its own user, which must reach its data folder
    chaos = Chaos(args, work, random.Random(args.seed))
    code = 2
    try:
        chaos.profile.write_text(json.dumps(fault_profile(args.seed, args.fault_scale)))
        chaos.seed()
        chaos.start_emulator(faults=True)
        chaos.callback.start()
        say(f"emulator :{chaos.emulator_port} (faults: {chaos.profile}), callback receiver :{chaos.callback_port}")
        chaos.chaos_phase()
        reruns = chaos.reruns()
        code = chaos.summary(reruns, started)
    finally:
        chaos.close()
        if code == 0 and not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)
        else:
            print(f"work folder kept: {work}")
    return code


if __name__ == "__main__":
    sys.exit(main())
