FROM python:3.11-slim
WORKDIR /app
# The OpenSSL gost engine: GOST R 34.10-2012 signing hundreds of times faster than pure Python.
RUN apt-get update && apt-get install -y --no-install-recommends libengine-gost-openssl && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY iemk_etl ./iemk_etl
COPY plugins ./plugins
COPY dags ./dags
COPY schemas ./schemas
RUN pip install --no-cache-dir -e .
ENV IEMK_HOME=/data \
    AIRFLOW__CORE__DAGS_FOLDER=/app/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
