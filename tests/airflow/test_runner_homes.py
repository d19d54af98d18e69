"""The runner's throwaway Airflow homes: a killed run's home is removed by the next start, a live one never."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from iemk_airflow import runner

_HOLDER = textwrap.dedent("""
    import pathlib, sys
    from iemk_airflow import runner
    home, _ = runner.claim_home(pathlib.Path(sys.argv[1]))
    (home / "airflow.db").write_bytes(b"x" * 4096)
    print(home, flush=True)
    sys.stdin.read()          # hold the home until told to go (or killed)
""")


def _holder(runs: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(runs)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    home = Path(proc.stdout.readline().strip())
    assert home.is_dir(), home
    return proc, home


def test_a_start_removes_the_homes_of_killed_runs_and_keeps_live_ones(tmp_path):
    runs = tmp_path / "airflow-runs"
    runs.mkdir()
    killed, killed_home = _holder(runs)
    live, live_home = _holder(runs)
    legacy = runs / "airflow-legacy1"                 # left by a version without lock files
    (legacy / "logs").mkdir(parents=True)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    try:
        home, lock = runner.claim_home(runs)
        try:
            assert not killed_home.exists() and not Path(f"{killed_home}.lock").exists()
            assert not legacy.exists()
            assert live_home.is_dir() and (live_home / "airflow.db").is_file()   # its run still holds it
        finally:
            runner.release_home(home, lock)
        assert not home.exists() and not Path(f"{home}.lock").exists()
    finally:
        live.communicate("")
    assert live.returncode == 0
    assert runner.clean_abandoned(runs) == [live_home]   # gone without releasing: the next start removes it


def test_a_kept_home_is_out_of_the_cleaners_way(tmp_path):
    home, lock = runner.claim_home(tmp_path)
    (home / "airflow.db").write_bytes(b"x")
    runner.release_home(home, lock, keep=True)
    kept = tmp_path / f"kept-{home.name}"
    assert runner.clean_abandoned(tmp_path) == [] and (kept / "airflow.db").is_file()
