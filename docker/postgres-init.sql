-- The МИС/ledger database is POSTGRES_DB (iemk); Airflow's metadata lives beside it.
CREATE DATABASE airflow;
