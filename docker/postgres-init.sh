#!/bin/sh
# Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d), as the superuser iemk.
# The МИС/ledger database is POSTGRES_DB (iemk, owned by the role iemk). Airflow's metadata gets a database and a
# role of its own: a non-superuser owner is enough for `airflow db migrate`, and neither side reads the other's
# tables. The password comes from compose (AIRFLOW_DB_PASSWORD), the same value Airflow's connection strings use.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v airflow_password="${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
SQL
