"""Shared by bench_region.py: child processes in their own groups, the memory sampler, log tails.

Everything here is about the processes the benchmark starts, not about the exporter.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass
class Child:
    """One child in a session (process group) of its own, so stopping it stops what it started too."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, cwd: Path | None = None) -> Child:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=cwd)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 20) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        # Stragglers of the group (task processes, pool workers) even when the leader is gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def tail(path: Path, chars: int = 3000) -> str:
    if not path.exists():
        return f"----- {path}: absent"
    return f"----- {path} (last {chars} chars)\n{path.read_text(errors='replace')[-chars:]}"


def wait_for(what: str, probe: Callable[[], object], timeout: float, children: list[Child],
             logs: list[Path], interval: float = 1.0) -> object:
    """``probe()``'s first true answer; a clear error with the logs' tails on a timeout or a dead child."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = probe()
        except Exception:  # noqa: BLE001 - the database or a port not there yet is "not yet"
            result = None
        if result:
            return result
        dead = {c.name: c.proc.returncode for c in children if c.proc is not None and c.proc.poll() is not None}
        if dead:
            raise RuntimeError(f"exited while waiting for {what}: {dead}\n" + "\n".join(tail(p) for p in logs))
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}\n" + "\n".join(tail(p) for p in logs))


# -- memory -----------------------------------------------------------------------------------------------------

def _children_map() -> tuple[dict[int, list[int]], dict[int, str]]:
    kids: dict[int, list[int]] = defaultdict(list)
    names: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids[ppid].append(pid)
        names[pid] = cmd
    return kids, names


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB; PSS shares each shared page among the processes that map it (no double counting)."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        with contextlib.suppress(OSError, IndexError, ValueError):
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
            pss = rss
    return rss, pss


def classify(cmd: str) -> str:
    """The role of a process by its command line (Airflow sets process titles; pool workers are spawned Pythons)."""
    if cmd.startswith("postgres") or "/postgres " in cmd or cmd.endswith("/postgres"):
        return "postgres"
    for role, marks in (("emulator", ("emulator serve",)), ("callback", ("callback serve",)),
                        ("tasks", ("LocalExecutor", "task", "supervisor", "runner", "multiprocessing", "spawn_main",
                                   "airflow worker")),
                        ("airflow", ("airflow", "gunicorn", "uvicorn"))):
        if any(m in cmd for m in marks):
            return role
    return "other"


@dataclass
class MemorySampler:
    """Samples every ``interval`` s the whole process trees under ``roots()``: their summed RSS and PSS, by role,
    and the largest single process. ``mark()`` starts the measured window (peaks are kept both overall and in it)."""

    roots: Callable[[], list[int]]
    interval: float = 0.5
    peak: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    window_peak: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    largest: tuple[float, str] = (0.0, "")
    window_largest: tuple[float, str] = (0.0, "")
    samples: int = 0
    _in_window: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True, name="memory-sampler")
        self._thread.start()
        return self

    def mark(self, on: bool = True) -> None:
        self._in_window = on

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):
                self.sample()

    def sample(self) -> None:
        kids, names = _children_map()
        seen: set[int] = set()
        todo = [p for p in self.roots() if p in names]
        totals: dict[str, float] = defaultdict(float)
        biggest = (0.0, "")
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            todo.extend(kids.get(pid, []))
            rss, pss = _memory_kb(pid)
            role = classify(names.get(pid, ""))
            totals["rss"] += rss / 1024
            totals["pss"] += pss / 1024
            totals[f"pss:{role}"] += pss / 1024
            totals[f"rss:{role}"] += rss / 1024
            totals["processes"] += 1
            if rss / 1024 > biggest[0]:
                biggest = (rss / 1024, f"{role}: {names.get(pid, '')[:90]}")
        self.samples += 1
        for key, value in totals.items():
            self.peak[key] = max(self.peak[key], value)
            if self._in_window:
                self.window_peak[key] = max(self.window_peak[key], value)
        self.largest = max(self.largest, biggest)
        if self._in_window:
            self.window_largest = max(self.window_largest, biggest)
