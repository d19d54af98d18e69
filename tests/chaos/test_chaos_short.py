"""The short chaos run (benchmarks/chaos.py --short) in the normal suite: real processes killed and restarted, then
the ledger and the emulator's registry compared. Skip it locally with ``-m "not chaos"``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.chaos
def test_short_chaos_run_loses_nothing_and_registers_nothing_twice():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"),
                                                         os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--short"], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "lost: 0 " in output and "registered twice: 0 " in output, output[-6000:]
    assert "SIGKILL exporter in stage «send»" in output        # the kills really happened
    assert "PostgreSQL stopped" in output and "SIGKILL emulator" in output
