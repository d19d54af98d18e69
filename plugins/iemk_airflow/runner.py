"""Export over a period without a scheduler: the real export DAG, one ``dag.test()`` run per day.

``iemk-etl export --mo OID --from D1 --to D2`` runs this module in a fresh Python. It uses a throwaway
Airflow home and metadata database of its own, because runs created by ``dag.test()`` occupy logical
dates and would make a later ``airflow backfill create`` on a shared metadata database skip them.

With CronDataIntervalTimetable, ``dag.test(logical_date=T)`` runs the last complete interval before T,
so the run for day D is started with T = D+1 00:00 in the DAG's timezone and covers [D, D+1).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from iemk_etl import periods
from iemk_etl.settings import Settings
from iemk_etl.store.integration import EXPORT_DAG, SIGN_AND_SEND_DAG

REPO_DAGS = Path(__file__).resolve().parent.parent.parent / "dags"


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    day: dt.date
    state: str
    interval: tuple[dt.datetime | None, dt.datetime | None]
    seconds: float


def dags_folder(explicit: Path | None = None, scratch: Path | None = None) -> Path:
    """IEMK_DAGS_FOLDER (``Settings.dags_folder``), else the repository's dags/, else a one-line DAG file (written
    under ``scratch``, the run's own Airflow home, so it goes with it)."""
    if explicit:
        return explicit
    if (REPO_DAGS / "iemk_export.py").is_file():
        return REPO_DAGS
    # Installed without the repository: a one-line DAG file over the installed package does the same.
    folder = scratch / "dags" if scratch else Path(tempfile.mkdtemp(prefix="iemk-dags-"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "iemk_export.py").write_text(
        "from iemk_airflow.export_dag import build_all  # airflow DAG file\nglobals().update(build_all())\n")
    return folder


def configure(airflow_home: Path, settings: Settings) -> None:
    """Airflow reads its configuration at import: call this before anything imports airflow.

    Our own IEMK_* come from settings; Airflow's configuration is its environment, written here for the run."""
    airflow_home.mkdir(parents=True, exist_ok=True)
    # Airflow's own deprecation chatter would bury the progress lines; our code's warnings still show.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    os.environ.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder(settings.dags_folder, airflow_home)),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": settings.airflow_log_level,
    })


def init_metadata_db() -> None:
    from airflow.utils.db import initdb

    from iemk_airflow import setup

    initdb()
    setup.ensure_pool()     # the pool iemk_api of the tasks that call ИЭМК


def _clear_previous(dag_id: str, logical_date: dt.datetime) -> None:
    # dag.test() reuses a run with the same logical date and would not run it again once finished.
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date).delete()


def run_day(dag: object, day: dt.date, tz: str) -> RunResult:
    logical = periods.day_start(day + dt.timedelta(days=1), tz)
    dag_id: str = dag.dag_id  # type: ignore[attr-defined]
    _clear_previous(dag_id, logical)
    started = time.monotonic()
    dr = dag.test(logical_date=logical)  # type: ignore[attr-defined]
    interval = (dr.data_interval_start, dr.data_interval_end)
    expected = periods.day_start(day, tz)
    if interval[0] is None or interval[0] != expected:
        raise RuntimeError(f"{dag_id}: the run for {day} covered {interval}, not the day itself")
    return RunResult(dag_id, day, str(dr.state), interval, time.monotonic() - started)


def sign_and_send(mo: list[str], start: dt.date, end: dt.date, kinds: list[int],
                  out: TextIO = sys.stdout) -> list[RunResult]:
    """One run of ``iemk_sign_and_send__<mo>`` per МО with the period as params; Airflow configured already."""
    from iemk_airflow.export_dag import build_all

    dags = build_all()
    results = []
    for dag_id in _select(dags, mo, prefix=SIGN_AND_SEND_DAG):
        started = time.monotonic()
        dr = dags[dag_id].test(run_conf={"from": start.isoformat(), "to": end.isoformat(),  # type: ignore[attr-defined]
                                         "kinds": kinds})
        results.append(RunResult(dag_id, start, str(dr.state), (None, None), time.monotonic() - started))
        out.write(f"{dag_id} {start} … {end}: {dr.state} ({results[-1].seconds:.1f} s)\n")
    return results


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def export_period(mo: list[str], start: dt.date, end: dt.date, out: TextIO = sys.stdout) -> list[RunResult]:
    """Run the export DAG of each МО for each day of [start, end]; Airflow must be configured already."""
    from iemk_airflow.export_dag import build_all
    from iemk_etl import settings as settings_mod

    settings = settings_mod.load()
    dags = build_all()
    wanted = _select(dags, mo)
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    total, results = len(wanted) * len(days), []
    live = out.isatty()  # redraw in place on a terminal; one plain line per run in a log
    for dag_id in wanted:
        for day in days:
            if live:
                out.write(f"\r{_bar(len(results), total)} {dag_id} {day} …")
                out.flush()
            results.append(run_day(dags[dag_id], day, settings.timezone))
            r = results[-1]
            prefix = "\r" if live else ""
            out.write(f"{prefix}{_bar(len(results), total)} {dag_id} {day} {r.state} ({r.seconds:.1f} s)\n")
            out.flush()
    return results


def _select(dags: dict[str, object], mo: list[str], prefix: str = EXPORT_DAG) -> list[str]:
    from iemk_airflow import mo_list
    from iemk_etl import settings as settings_mod

    entries = mo_list.configured_mo(settings_mod.load())   # the same list the DAGs were built from
    if "all" in mo:
        return sorted(d for d in dags if d.startswith(prefix))
    chosen = []
    for item in mo:
        match = [e for e in entries if item in (e.oid, e.code)]
        if not match:
            raise SystemExit(f"МО [{item}] has no export DAG: run `iemk-etl integration enable --mo {item}` first")
        chosen.append(f"{prefix}{match[0].code}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iemk_airflow.runner", description=__doc__)
    p.add_argument("--mo", action="append", required=True)
    p.add_argument("--from", dest="start", type=dt.date.fromisoformat, required=True)
    p.add_argument("--to", dest="end", type=dt.date.fromisoformat, required=True)
    p.add_argument("--keep-airflow-home", action="store_true", help="keep the throwaway Airflow home for a look")
    p.add_argument("--sign-and-send", action="store_true", help="run iemk_sign_and_send__<mo> over the period")
    p.add_argument("--kinds", default="", help="with --sign-and-send: НСИ 1520 codes, comma-separated")
    args = p.parse_args(argv)
    from iemk_etl import settings as settings_mod
    from iemk_etl.flk import parallel

    # Every task of the run in this one process, one at a time: ФЛК gets the cores through worker processes kept
    # for the whole export (each compiles a kind's pack once), unless IEMK_FLK_PROCESSES says otherwise.
    os.environ.setdefault("IEMK_FLK_PROCESSES", str(os.cpu_count() or 1))
    parallel.keep_pools()
    settings = settings_mod.load()
    home, lock = claim_home(_runs_dir(settings.home))
    configure(home, settings)
    try:
        init_metadata_db()
        if args.sign_and_send:
            kinds = [int(k) for k in args.kinds.split(",") if k.strip()]
            results = sign_and_send(args.mo, args.start, args.end, kinds)
        else:
            results = export_period(args.mo, args.start, args.end)
    finally:
        parallel.keep_pools(False)
        release_home(home, lock, keep=args.keep_airflow_home)
    failed = [r for r in results if r.state != "success"]
    print(f"{len(results) - len(failed)} of {len(results)} runs succeeded")
    for r in failed:
        print(f"  {r.dag_id} {r.day}: {r.state}")
    return 1 if failed else 0


# -- the run's throwaway Airflow home ------------------------------------------------------------------------
# Each run's home, IEMK_HOME/airflow-runs/airflow-XXXX, has a lock file beside it (airflow-XXXX.lock) that the run
# holds (flock) for its whole life; the kernel lets go of it when the process dies, even by SIGKILL. A run starting
# removes every home whose lock nobody holds: the leftovers of killed runs. Creating and cleaning take the folder's
# own lock, so a run being set up is never taken for a dead one.

_HOME_PREFIX = "airflow-"
_LOCK_SUFFIX = ".lock"
KEPT_PREFIX = "kept-"


def claim_home(runs: Path) -> tuple[Path, int]:
    """A new Airflow home under ``runs``, held by this process (the lock's descriptor) until ``release_home`` or its
    death; the homes of runs that died are removed first."""
    with _folder_lock(runs):
        removed = clean_abandoned(runs)
        if removed:
            print(f"removed {len(removed)} temporary Airflow folder(s) left by killed runs")
        fd, lock_path = tempfile.mkstemp(prefix=_HOME_PREFIX, suffix=_LOCK_SUFFIX, dir=runs)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        home = Path(lock_path.removesuffix(_LOCK_SUFFIX))
        home.mkdir()
    return home, fd


def release_home(home: Path, lock: int, *, keep: bool = False) -> None:
    """Remove the run's home (or keep it for a look, renamed out of the cleaner's way), then drop its lock."""
    if keep:
        kept = home.with_name(KEPT_PREFIX + home.name)
        home.rename(kept)
        print(f"Airflow home kept: {kept}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    Path(f"{home}{_LOCK_SUFFIX}").unlink(missing_ok=True)
    os.close(lock)


def clean_abandoned(runs: Path) -> list[Path]:
    """Remove the homes under ``runs`` whose run is gone (its lock free, or no lock at all); the caller holds the
    folder's lock. Returns what was removed."""
    removed = []
    for lock_path in sorted(runs.glob(f"{_HOME_PREFIX}*{_LOCK_SUFFIX}")):
        if _held(lock_path):
            continue
        home = Path(str(lock_path).removesuffix(_LOCK_SUFFIX))
        shutil.rmtree(home, ignore_errors=True)
        lock_path.unlink(missing_ok=True)
        removed.append(home)
    for home in sorted(runs.glob(f"{_HOME_PREFIX}*")):
        # A home without its lock: left by a run of a version without locks, or its lock went: nobody runs in it.
        if home.is_dir() and not Path(f"{home}{_LOCK_SUFFIX}").exists():
            shutil.rmtree(home, ignore_errors=True)
            removed.append(home)
    return removed


def _held(lock_path: Path) -> bool:
    """Whether a live process holds this lock file."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)        # closing drops a lock taken here
    return False


@contextlib.contextmanager
def _folder_lock(runs: Path) -> Iterator[None]:
    fd = os.open(runs / ".runs.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _runs_dir(home: Path) -> Path:
    runs = home / "airflow-runs"
    runs.mkdir(parents=True, exist_ok=True)
    return runs


if __name__ == "__main__":
    raise SystemExit(main())
