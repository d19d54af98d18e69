"""ФЛК of many documents on every core: worker processes, each compiling a kind's pack once and keeping it.

``run`` hands jobs to a pool and gives back each job's result (or the exception it raised) as soon as it is done, so
the caller records each document on its own, as the sequential path does. At most ``window`` jobs are in flight: a
large batch never holds every document's bytes in memory, and a crash touches only the jobs in flight.

A worker that dies (a crash in libxml2 or Saxon, the OOM killer, a signal) breaks the whole pool; the jobs in
flight then are run again one at a time, each in a fresh single-worker pool, so the one that kills its process again
is named (``WorkerCrashedError``, an internal error: held, visible, not ended) and every other job gets its real
result. Then a new pool takes the rest of the batch.

Processes are started with ``spawn``: the task process may hold threads, a database connection and a Saxon
runtime, none of which survive ``fork``. A spawned child normally runs the parent's main program again (as
``__mp_main__``) before it takes work; in an Airflow task that program is the ``airflow`` console script, whose
import in a child fails (the task supervisor makes the task's database connection string invalid on purpose), so
every worker would die at start. Workers need only ``iemk_etl``, so each one is launched without the parent's main
module (``_CleanMainSpawnContext``).

A pool lives for one ``run`` unless the process keeps its pools (``keep_pools``): the in-process runner of
``iemk-etl export`` (every task of a DAG run in one process, one validate call per chunk) does, so each worker
compiles each kind's Schematron once for the whole export rather than once a chunk. A task process on a real
executor does not: it is one chunk, and a pool must not outlive it.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.process import BaseProcess
from typing import TypeVar

from iemk_etl import errors
from iemk_etl.errors import IemkError

log = logging.getLogger(__name__)

K = TypeVar("K")
A = TypeVar("A")
R = TypeVar("R")


class WorkerCrashedError(IemkError, RuntimeError):
    """The process checking this document died while checking it, twice (once in a pool, once on its own)."""

    default_kind = errors.INTERNAL


_main_swap = threading.Lock()


@contextmanager
def _without_main_module() -> Iterator[None]:
    """While a child is launched, ``sys.modules["__main__"]`` is a bare stand-in (no ``__file__``, no
    ``__spec__``), so ``multiprocessing.spawn.get_preparation_data`` gives the child neither a path nor a module
    name to run as ``__mp_main__``. The real main module object is not touched (code running in other threads
    keeps its globals); only the ``sys.modules`` entry is swapped, and put back as soon as the launch is done."""
    with _main_swap:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is None:
                del sys.modules["__main__"]
            else:
                sys.modules["__main__"] = main


class _CleanMainProcess(SpawnProcess):
    """A spawned process that does not import the parent's main program. Hooked at ``_Popen`` (where the
    preparation data is taken), so it holds for every worker a pool starts in its life, on whatever thread:
    ``ProcessPoolExecutor`` starts workers lazily on ``submit``, and a kept pool may start one in a later ``run``."""

    @staticmethod
    def _Popen(process_obj: BaseProcess) -> object:
        with _without_main_module():
            return SpawnProcess._Popen(process_obj)


class _CleanMainSpawnContext(SpawnContext):
    Process = _CleanMainProcess


_context = _CleanMainSpawnContext()


def _pool(processes: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(processes, mp_context=_context)


_kept: dict[int, ProcessPoolExecutor] = {}     # by number of processes, while keep_pools is on
_keeping = False


def keep_pools(keep: bool = True) -> None:
    """Keep each pool (and its workers' compiled packs) for the next ``run`` in this process, until
    ``shutdown_kept`` or the process's exit; ``keep_pools(False)`` shuts the kept ones down."""
    global _keeping
    _keeping = keep
    if not keep:
        shutdown_kept()


def shutdown_kept() -> None:
    while _kept:
        _kept.popitem()[1].shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_kept)


def _take_pool(processes: int) -> ProcessPoolExecutor:
    if not _keeping:
        return _pool(processes)
    if processes not in _kept:
        _kept[processes] = _pool(processes)
    return _kept[processes]


def _release_pool(pool: ProcessPoolExecutor, processes: int, *, finished: bool) -> None:
    """A kept pool stays when its batch finished; one left with work in flight (the caller stopped reading, an
    error) is shut down and forgotten, as is every pool that is not kept."""
    if finished and _keeping and _kept.get(processes) is pool:
        return
    if _kept.get(processes) is pool:
        del _kept[processes]
    pool.shutdown(wait=True, cancel_futures=True)


def run(fn: Callable[[A], R], jobs: Iterable[tuple[K, A]], processes: int,
        window: int | None = None) -> Iterator[tuple[K, R | BaseException]]:
    """(key, fn(arg) or the exception it raised) for every (key, arg) job, in the order they finish.

    ``fn`` must be a module-level function of an importable module (not of the main program, which the workers
    do not run) and its argument and result picklable."""
    window = window or 4 * processes
    queue = iter(jobs)
    pending: dict[Future, tuple[K, A]] = {}
    pool = _take_pool(processes)
    finished = False
    try:
        while True:
            for job in queue:
                pending[pool.submit(fn, job[1])] = job
                if len(pending) >= window:
                    break
            if not pending:
                finished = True
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            suspects: list[tuple[K, A]] = []
            for future in done:
                outcome = _outcome(future)
                if isinstance(outcome, BrokenProcessPool):
                    suspects.append(pending.pop(future))
                else:
                    yield pending.pop(future)[0], outcome
            if suspects:
                # Every job still in flight went down with the pool; which one killed it is not known yet.
                suspects += pending.values()
                pending.clear()
                _release_pool(pool, processes, finished=False)
                log.error("ФЛК worker process died; %d documents in flight are checked again one by one",
                          len(suspects))
                yield from _one_by_one(fn, suspects)
                pool = _take_pool(processes)
    finally:
        _release_pool(pool, processes, finished=finished)


def _outcome(future: Future) -> object:
    try:
        return future.result()
    except BaseException as exc:  # noqa: BLE001 - handed to the caller, which records it on its document
        return exc


def _one_by_one(fn: Callable[[A], R], jobs: list[tuple[K, A]]) -> Iterator[tuple[K, R | BaseException]]:
    pool = _pool(1)
    try:
        for key, arg in jobs:
            outcome = _outcome(pool.submit(fn, arg))
            if isinstance(outcome, BrokenProcessPool):
                pool.shutdown(wait=True, cancel_futures=True)
                pool = _pool(1)
                outcome = WorkerCrashedError("процесс проверки ФЛК аварийно завершился на этом документе "
                                             "(повторно, в отдельном процессе)")
            yield key, outcome
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
