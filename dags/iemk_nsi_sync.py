"""The weekly НСИ dictionary download (`iemk_nsi_sync`): the dictionaries the СЭМД cite, from ФНСИ."""

from iemk_airflow.nsi_dag import build_nsi_dag

nsi_sync = build_nsi_dag()
