"""Running the export DAGs now, without a scheduler: the command line's `export` and `sign-and-send`, and the demo.

The DAGs run in a fresh Python process (``python -m iemk_airflow.runner``, which configures Airflow and calls
``dag.test``), so this module itself never imports Airflow.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from iemk_etl import settings as settings_mod


def run_export(mo: list[str], start: dt.date, end: dt.date, env: dict[str, str] | None = None,
               extra: list[str] | None = None) -> int:
    """Run the DAGs of these МО (or "all") over the days ``start`` … ``end``; return the runner's exit code."""
    command = [sys.executable, "-m", "iemk_airflow.runner", "--from", start.isoformat(), "--to", end.isoformat()]
    for m in mo:
        command += ["--mo", m]
    command += extra or []
    return subprocess.run(command, env=settings_mod.child_environment(env), check=False).returncode
