"""The Airflow pool of the tasks that call ИЭМК, across every МО's DAGs (a module of its own: the DAG file names it
at parse time without importing the pipeline). ``python -m iemk_airflow.setup`` creates it with IEMK_API_POOL_SLOTS
slots."""

API_POOL = "iemk_api"
