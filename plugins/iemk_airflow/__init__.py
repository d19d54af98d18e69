"""Airflow glue for iemk-etl: DAG factory, task wiring and the in-process period runner.

Installed as a package (``pip install``) so the scheduler, workers and the triggerer import it the same
way; all domain work is in ``iemk_etl``.
"""
