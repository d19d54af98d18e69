"""Export of signed СЭМД to ИЭМК: the DAGs of each МО of the МО list (IEMK_MO_SOURCES: the Airflow Variable
iemk_mo_list, IEMK_MO_CONFIG, or the МИС database's integration section) and the report DAG. A worker running a
task builds only that task's DAG (Airflow's parsing context)."""

from iemk_airflow.export_dag import build_all

globals().update(build_all())
