"""ФЛК's worker pool inside an Airflow task run by the real ``airflow`` command: the task's main program is the
``airflow`` console script, and its workers must not import it again (in a task process Airflow's import fails:
the supervisor makes the database connection string invalid), or every document ends held as INTERNAL."""

import json
import os
import subprocess
import sys
from pathlib import Path

# ``airflow tasks test`` runs the task in its own process, without the supervisor; the task does what the
# supervisor does to a task process (``block_orm_access``) before it checks a batch in two worker processes.
_DAG = '''
import json
import sys

from airflow.sdk import dag, task


@dag(schedule=None)
def flk_pool_probe():
    @task
    def probe():
        from airflow.sdk.execution_time.supervisor import block_orm_access

        from iemk_etl.flk import parallel

        block_orm_access()
        outcomes = dict(parallel.run(abs, [(f"d{n}", -n) for n in range(6)], processes=2))
        with open(OUT, "w") as out:
            json.dump({"main": sys.modules["__main__"].__file__,
                       "outcomes": {k: v if isinstance(v, int) else repr(v) for k, v in outcomes.items()}}, out)

    probe()


flk_pool_probe()
'''


def test_workers_of_a_task_started_by_the_airflow_command_check_their_documents(tmp_path):
    dags, out = tmp_path / "dags", tmp_path / "outcomes.json"
    dags.mkdir()
    (dags / "flk_pool_probe.py").write_text(f"OUT = {str(out)!r}\n" + _DAG)
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}"}
    airflow = Path(sys.executable).with_name("airflow")
    migrated = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=180)
    assert migrated.returncode == 0, migrated.stderr
    # Its exit status is not the verdict: with the ORM blocked, `tasks test` cannot record the task's end itself.
    ran = subprocess.run([str(airflow), "tasks", "test", "flk_pool_probe", "probe"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.exists(), ran.stdout + ran.stderr
    report = json.loads(out.read_text())
    assert report == {"main": str(airflow), "outcomes": {f"d{n}": n for n in range(6)}}, ran.stdout + ran.stderr
