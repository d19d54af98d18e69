"""Export of signed СЭМД to ИЭМК: one DAG per МО listed by `iemk-etl integration enable`."""

from iemk_airflow.export_dag import build_all

globals().update(build_all())
