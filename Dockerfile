# The project's Airflow image, on the official image's conventions: user `airflow` (uid 50000, gid 0; compose runs
# it as ${AIRFLOW_UID:-50000}:0), AIRFLOW_HOME=/opt/airflow, system packages as root, `pip install` as the airflow
# user with the Airflow version pinned and the constraints file, never as root.
#   docker build -t iemk-etl-airflow .
# With Apache's published constraints instead of the copy in constraints/ (needs GitHub access while building):
#   docker build --build-arg AIRFLOW_CONSTRAINTS=https://raw.githubusercontent.com/apache/airflow/constraints-3.3.2/constraints-3.11.txt .
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# The constraints CI installs with (origin in the file's header), so the image runs the versions the tests ran;
# a path inside the image or a URL.
ARG AIRFLOW_CONSTRAINTS=/opt/iemk/constraints/constraints-airflow-3.3.2-py3.11.txt

USER root
# The OpenSSL gost engine: GOST R 34.10-2012 signing in-process, ≈1 ms a signature instead of ≈50 ms in pure Python.
# The build fails here, not at the first signature, if the engine does not load.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libengine-gost-openssl \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && openssl engine gost >/dev/null
# Mount points owned by the airflow user before any volume lands on them: a named volume starts as a copy of the
# image's folder (owner included), so nothing has to chown as root at start.
RUN mkdir -p /opt/iemk/data /opt/iemk/keys /opt/iemk/packs /opt/airflow/secrets /opt/airflow/logs \
    && chown -R airflow:0 /opt/iemk /opt/airflow/secrets /opt/airflow/logs \
    && chmod -R g+rwX /opt/iemk /opt/airflow/secrets /opt/airflow/logs
USER airflow

COPY --chown=airflow:0 constraints /opt/iemk/constraints
COPY --chown=airflow:0 pyproject.toml README.md /opt/iemk/src/
COPY --chown=airflow:0 iemk_etl /opt/iemk/src/iemk_etl
COPY --chown=airflow:0 plugins /opt/iemk/src/plugins
# apache-airflow pinned to the image's own version so the project's dependencies can never move Airflow itself.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/iemk/src --constraint "${AIRFLOW_CONSTRAINTS}" \
    && iemk-etl --help >/dev/null
COPY --chown=airflow:0 dags /opt/airflow/dags

ENV IEMK_HOME=/opt/iemk/data \
    IEMK_KEYS_DIR=/opt/iemk/keys \
    IEMK_SEMD_PACKS=/opt/iemk/packs \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
