"""The export DAG, one per configured МО: ``iemk_export__<mo code>``.

check_integration → extract → validate → send → wait_for_replies → write_statuses.
Tasks pass ledger ids (never documents) and the database ledger is the record; see iemk_etl.export.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, PokeReturnValue, dag, get_current_context, task

from iemk_airflow import resources
from iemk_etl import db, export, integration, keys
from iemk_etl import settings as settings_mod
from iemk_etl.integration import MoEntry
from iemk_etl.settings import Settings

log = logging.getLogger(__name__)


def _period(conf: dict[str, Any], start: dt.datetime | None, end: dt.datetime | None,
            tz: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    # A manual run has no data interval: {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"} in conf sets one.
    if start is None and conf.get("from"):
        start = pendulum.parse(conf["from"], tz=tz)  # type: ignore[assignment]
    if end is None and conf.get("to"):
        end = pendulum.parse(conf["to"], tz=tz).add(days=1)  # type: ignore[union-attr]
    return start, end


def build_export_dag(mo: MoEntry, settings: Settings) -> DAG:
    """``settings`` shape the DAG (schedule, sensor timing); tasks read theirs when they run."""

    @dag(
        dag_id=f"iemk_export__{mo.code}",
        description=f"Экспорт СЭМД в ИЭМК: {mo.name} ({mo.oid})",
        schedule=CronDataIntervalTimetable(settings.schedule_cron, timezone=settings.timezone),
        start_date=pendulum.parse(settings.start_date, tz=settings.timezone),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=30)},
        params={"mo_oid": Param(mo.oid, type="string", description="МО OID (ФРМО)")},
        tags=["iemk", mo.code],
        doc_md=__doc__,
    )
    def iemk_export() -> None:
        @task.short_circuit
        def check_integration() -> bool:
            with db.connect(resources.source_dsn(settings_mod.load())) as conn:
                on = export.integration_on(conn, mo.oid)
            if not on:
                log.warning("integration %s is OFF for МО %s (%s): nothing is exported, tasks are skipped",
                            integration.EXTERNAL_SYSTEM, mo.code, mo.oid)
            return on

        @task
        def extract(data_interval_start: dt.datetime | None = None,
                    data_interval_end: dt.datetime | None = None) -> list[int]:
            cfg = settings_mod.load()
            conf = get_current_context()["dag_run"].conf or {}
            start, end = _period(conf, data_interval_start, data_interval_end, cfg.timezone)
            with db.connect(resources.source_dsn(cfg)) as conn:
                return export.extract(conn, mo.oid, start, end)

        @task
        def validate(ids: list[int]) -> list[int]:
            cfg = settings_mod.load()
            with db.connect(resources.source_dsn(cfg), autocommit=True) as conn:
                return export.validate(conn, ids, cfg)

        @task
        def send(ids: list[int]) -> list[int]:
            cfg = settings_mod.load()
            dsn = resources.source_dsn(cfg)
            try:
                iemk = resources.iemk_client(cfg, mo.code)
            except keys.KeyMaterialError as exc:
                held = export.hold_for_signing_key(dsn, ids, str(exc))
                raise RuntimeError(f"{held} documents held back: request signing certificate: {exc}") from None
            with iemk:
                report = export.send(dsn, ids, cfg, iemk)
            if report.transient:
                # Recorded in the ledger already; failing the task makes Airflow retry only those.
                raise RuntimeError(f"{report.transient} documents met a transient ИЭМК error; they will be retried")
            return report.sent

        @task.sensor(poke_interval=settings.reply_poke_seconds, timeout=settings.reply_timeout_seconds,
                     mode="reschedule", soft_fail=True)
        def wait_for_replies(ids: list[int]) -> PokeReturnValue:
            with db.connect(resources.source_dsn(settings_mod.load())) as conn:
                answered, awaited = export.replies_pending(conn, ids)
            log.info("asynchronous answers: %d of %d", answered, awaited)
            return PokeReturnValue(is_done=answered >= awaited)

        @task(trigger_rule="none_failed")
        def write_statuses(ids: list[int]) -> dict[str, int]:
            with db.connect(resources.source_dsn(settings_mod.load()), autocommit=True) as conn:
                return export.write_back(conn, mo.oid, ids)

        ids = extract()
        sent = send(validate(ids))
        check_integration() >> ids
        wait_for_replies(sent) >> write_statuses(ids)

    return iemk_export()


def build_all() -> dict[str, DAG]:
    """One DAG per МО in the configuration file; reads no database, so it is safe at parse time."""
    settings = settings_mod.load()
    dags = {}
    for mo in integration.read_mo_config(settings.mo_config_path):
        built = build_export_dag(mo, settings)
        dags[built.dag_id] = built
    return dags
