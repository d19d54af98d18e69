"""iemk-etl: export of patients and signed СЭМД from a МИС to the federal ИЭМК (ЕГИСЗ).

This package is the domain core. It never imports Airflow: the DAGs in ``dags/`` and the glue in
``plugins/iemk_airflow`` call into it.
"""

__version__ = "0.1.0"
