"""The МО that get DAGs, from a place every Airflow component can read.

``IEMK_MO_SOURCES`` (default ``variable,file``) lists the sources, tried in order; the first that *answers* wins:

* ``variable`` — the Airflow Variable ``iemk_mo_list`` (JSON, the file's shape or just the list): in the metadata
  database, a secrets backend or ``AIRFLOW_VAR_IEMK_MO_LIST``, so every scheduler, dag-processor and worker host
  sees the same list with no file copied around. Not set = no answer.
* ``file`` — ``IEMK_MO_CONFIG`` (kept by ``iemk-etl integration enable``). Absent = no answer.
* ``database`` — the integration section of the МИС database (``iemk.mo_integration``: every МО ever switched
  on). This is the one source that queries a database at parse time (bounded connect timeout), so it is opt-in.

A source that answers with an empty list gives no МО DAGs (logged). A source that is set but cannot be read (bad
JSON, database down) is logged as an error and the next source is tried, so a broken source never silently empties
the DAG list; when no source answers, a warning names them all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from iemk_etl.settings import Settings
from iemk_etl.store import integration
from iemk_etl.store.integration import MoEntry

log = logging.getLogger(__name__)

VARIABLE = "iemk_mo_list"


def _from_variable(settings: Settings) -> list[MoEntry] | None:
    from airflow.sdk import Variable

    raw = Variable.get(VARIABLE, default=None)
    if raw is None or not str(raw).strip():
        return None
    return integration.parse_mo_list(str(raw), f"переменной Airflow {VARIABLE}")


def _from_file(settings: Settings) -> list[MoEntry] | None:
    path = settings.mo_config_path
    return integration.read_mo_config(path) if path.is_file() else None


def _from_database(settings: Settings) -> list[MoEntry] | None:
    from iemk_airflow import resources
    from iemk_etl.store import db

    with db.connect(resources.source_dsn(settings), autocommit=True) as conn:
        return integration.integrated_mo(conn)


READERS: dict[str, Callable[[Settings], list[MoEntry] | None]] = {
    "variable": _from_variable, "file": _from_file, "database": _from_database}


def configured_mo(settings: Settings) -> list[MoEntry]:
    """The МО list from the first source of ``settings.mo_sources`` that answers."""
    for source in settings.mo_sources:
        try:
            found = READERS[source](settings)
        except Exception as exc:  # noqa: BLE001 - any failure of one source must leave the others to try
            log.error("МО list: source %r could not be read (%s: %s); trying the next", source,
                      type(exc).__name__, exc)
            continue
        if found is None:
            continue
        if not found:
            log.warning("МО list: source %r lists no МО: no МО DAGs", source)
        else:
            log.debug("МО list: %d МО from source %r", len(found), source)
        return found
    log.warning("МО list: none of the sources %s is set (Variable %s, file %s): no МО DAGs",
                ",".join(settings.mo_sources), VARIABLE, settings.mo_config_path)
    return []
