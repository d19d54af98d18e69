"""What parsing dags/iemk_export.py costs with many МО: the dag-processor's full parse vs a worker's parse for one task.

`.venv/bin/python benchmarks/bench_dag_parse.py --mo 200 --repeat 5`

Each sample is a fresh Python (as a task's process is) that imports Airflow first (a worker has it already) and then
times loading the DAG file through Airflow's DagBag: our modules' import plus building the DAGs. "one task" sets
Airflow's parsing context (the environment variables the task runner sets before it parses the file) to one МО's
export DAG; "full" sets none, as the dag-processor. The МО list comes from a generated IEMK_MO_CONFIG file (the
Variable source is not set, so the file answers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the child: stdout's last line is JSON {"seconds", "build_seconds", "dags"}.
CHILD = r"""
import json, sys, time
import airflow.sdk                                          # a worker has Airflow imported before it parses
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
total = time.perf_counter() - started
from iemk_airflow import export_dag                         # imported by the parse above: now free
started = time.perf_counter()
export_dag.build_all()
build = time.perf_counter() - started
assert not bag.import_errors, bag.import_errors
print(json.dumps({"seconds": total, "build_seconds": build, "dags": len(bag.dags)}))
"""


def _mo_config(path: Path, count: int) -> None:
    mo = [{"oid": f"1.2.643.5.1.13.13.12.2.77.{7000 + n}", "code": f"mo{n:03d}", "name": f"МО № {n}"}
          for n in range(count)]
    path.write_text(json.dumps({"mo": mo}, ensure_ascii=False), encoding="utf-8")


def _sample(env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "dags" / "iemk_export.py")], env=env,
                         capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mo", type=int, default=200)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dag-parse-") as tmp:
        config = Path(tmp) / "mo.json"
        _mo_config(config, args.mo)
        base = {**os.environ, "IEMK_MO_CONFIG": str(config), "IEMK_HOME": tmp, "AIRFLOW_HOME": tmp,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "IEMK_MO_SOURCES": "file"}
        for name in ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID"):
            base.pop(name, None)
        one = {**base, "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "iemk_export__mo100",
               "_AIRFLOW_PARSING_CONTEXT_TASK_ID": "extract"}
        print(f"{args.mo} МО, {args.repeat} fresh processes each; medians (s)")
        print("| parse | DAGs built | load DAG file (import + build) | build_all() alone |")
        print("|---|---|---|---|")
        for label, env in (("full (dag-processor)", base), ("one task (parsing context)", one)):
            samples = [_sample(env) for _ in range(args.repeat)]
            seconds = statistics.median(s["seconds"] for s in samples)
            build = statistics.median(s["build_seconds"] for s in samples)
            print(f"| {label} | {int(samples[0]['dags'])} | {seconds:.3f} | {build:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
