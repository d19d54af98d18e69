FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY iemk_etl ./iemk_etl
COPY plugins ./plugins
COPY dags ./dags
COPY schemas ./schemas
RUN pip install --no-cache-dir -e .
ENV IEMK_HOME=/data \
    AIRFLOW__CORE__DAGS_FOLDER=/app/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
