"""ФЛК's worker pool: every job's own outcome, in real worker processes; a worker killed mid-job costs only its job."""

import json
import os
import subprocess
import sys

import pytest

from iemk_etl.flk import parallel


def square_or_die(n: int) -> int:
    """The job: 7 kills its worker process outright (as a crash in libxml2 or Saxon would); 5 raises."""
    if n == 7:
        os._exit(3)
    if n == 5:
        raise ValueError("five")
    return n * n


def test_results_and_exceptions_come_back_per_job():
    outcomes = dict(parallel.run(square_or_die, ((f"d{n}", n) for n in (1, 2, 3, 5, 4)), processes=2))
    assert {k: v for k, v in outcomes.items() if k != "d5"} == {"d1": 1, "d2": 4, "d3": 9, "d4": 16}
    assert isinstance(outcomes["d5"], ValueError) and str(outcomes["d5"]) == "five"


def test_a_worker_killed_on_one_document_names_that_document_and_the_batch_goes_on():
    jobs = [(f"d{n}", n) for n in (1, 2, 7, 3, 4, 6, 8, 9)]
    outcomes = dict(parallel.run(square_or_die, iter(jobs), processes=2, window=3))
    assert sorted(outcomes) == sorted(k for k, _ in jobs)           # each job answered once
    crashed = outcomes.pop("d7")
    assert isinstance(crashed, parallel.WorkerCrashedError)
    assert crashed.kind.code == "INTERNAL" and "аварийно завершился" in crashed.status_text()
    assert outcomes == {f"d{n}": n * n for n in (1, 2, 3, 4, 6, 8, 9)}


@pytest.mark.parametrize("processes", [1, 2])
def test_an_empty_batch_is_nothing(processes):
    assert list(parallel.run(square_or_die, [], processes=processes)) == []


def pid_of_worker(_n: int) -> int:
    return os.getpid()


def test_kept_pools_serve_the_next_batch_with_the_same_workers_and_a_crash_replaces_them():
    """keep_pools (the in-process runner): the second batch runs in the first one's worker processes (their
    compiled packs with them); without it every batch starts new processes; a crash drops the kept pool."""
    fresh = [{pid for _, pid in parallel.run(pid_of_worker, ((n, n) for n in range(8)), processes=2)}
             for _ in range(2)]
    assert fresh[0].isdisjoint(fresh[1]) and os.getpid() not in fresh[0]
    parallel.keep_pools()
    try:
        kept = [{pid for _, pid in parallel.run(pid_of_worker, ((n, n) for n in range(8)), processes=2)}
                for _ in range(2)]
        assert kept[1] <= kept[0], kept
        crashed = dict(parallel.run(square_or_die, [("d7", 7), ("d2", 2)], processes=2))
        assert isinstance(crashed["d7"], parallel.WorkerCrashedError) and crashed["d2"] == 4
        after = {pid for _, pid in parallel.run(pid_of_worker, ((n, n) for n in range(8)), processes=2)}
        assert after.isdisjoint(kept[0]), "the broken pool was kept"
    finally:
        parallel.keep_pools(False)
    assert not parallel._kept


# The main program of an Airflow task process is the ``airflow`` console script. A spawned child would import it
# again (as ``__mp_main__``), which imports Airflow, which fails in a task process (the supervisor sets the
# database connection string to an invalid value on purpose): every worker dies at start. This main program fails
# the same way when imported under any name but ``__main__``.
_MAIN_PROGRAM = '''
import json
import sys

if __name__ != "__main__":
    raise RuntimeError(f"the main program was imported again, as {__name__}")

from iemk_etl.flk import parallel

import jobs


def batch(numbers):
    return {key: (value if isinstance(value, int) else repr(value))
            for key, value in parallel.run(jobs.square, ((f"d{n}", n) for n in numbers), processes=2)}


main = sys.modules["__main__"]
fresh = batch(range(4))
parallel.keep_pools()
# One job starts only one of the kept pool's workers; the second starts in the next run.
kept = [batch([9]), batch(range(6))]
parallel.keep_pools(False)
print(json.dumps({
    "fresh": fresh, "kept": kept,
    "main_restored": sys.modules["__main__"] is main and main.__file__ == __file__ and main.__spec__ is __spec__,
}))
'''


@pytest.mark.parametrize("started_as", ["script", "module"])
def test_workers_do_not_run_the_parents_main_program(tmp_path, started_as):
    (tmp_path / "jobs.py").write_text("def square(n):\n    return n * n\n")
    (tmp_path / "task_main.py").write_text(_MAIN_PROGRAM)
    command = [sys.executable, "task_main.py"] if started_as == "script" else [sys.executable, "-m", "task_main"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {
        "fresh": {f"d{n}": n * n for n in range(4)},
        "kept": [{"d9": 81}, {f"d{n}": n * n for n in range(6)}],
        "main_restored": True,
    }, done.stderr
