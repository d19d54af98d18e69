"""ФЛК's worker pool: every job's own outcome, in real worker processes; a worker killed mid-job costs only its job."""

import os

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
