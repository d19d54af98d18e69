"""The Airflow side of alerts (iemk_etl.notify): callbacks on the DAGs of each МО and the deadline alert.

- A DAG run that fails sends one alert (IEMK_ALERT: log, email, webhook) with the МО, the run, the failed task and
  the ledger's counts per status for the run's period. A failed task logs one line (its run's alert follows when the
  run fails: every task of the export DAG leads to write_statuses, so one alert per run, not one per task).
- IEMK_EXPORT_DEADLINE adds an Airflow 3 ``DeadlineAlert``: "HH:MM" — the nightly run has not finished by that
  local time after its interval ends (reference: the run's logical date); an interval such as 8h — not finished
  that long after it was queued (reference: queued at). The scheduler calls ``deadline_missed`` through the executor
  (a ``SyncCallback``).

E-mail goes through the Airflow connection IEMK_ALERT_SMTP_CONN_ID (type smtp: host, port, login, password; extra
``from_email``, ``disable_ssl``, ``disable_tls`` as the SMTP provider spells them).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Any

from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback

from iemk_airflow.lazy import lazy
from iemk_etl import settings as settings_mod
from iemk_etl.settings import Settings
from iemk_etl.store import integration
from iemk_etl.store.integration import MoEntry

log = logging.getLogger(__name__)

# Only a callback needs these (psycopg, the report queries): parsing the DAG file stays cheap.
resources = lazy("iemk_airflow.resources")
notify = lazy("iemk_etl.notify")
db = lazy("iemk_etl.store.db")

_DAILY = re.compile(r"^([0-5]?[0-9]) ([01]?[0-9]|2[0-3]) \* \* \*$")


def dag_kwargs(mo: MoEntry, settings: Settings) -> dict[str, Any]:
    """What the @dag decorator of an МО's DAG takes for alerts: the run's failure callback and the deadline."""
    kwargs: dict[str, Any] = {"on_failure_callback": RunFailed(mo.oid, mo.code)}
    deadline = deadline_alert(mo, settings)
    if deadline is not None:
        kwargs["deadline"] = deadline
    return kwargs


def watch_tasks(dag: DAG, mo: MoEntry) -> DAG:
    """Every task of ``dag`` logs its final failure (after its retries) in one line."""
    for task in dag.tasks:
        task.on_failure_callback = [*task.on_failure_callback, TaskFailed(mo.oid, mo.code)]
    return dag


# -- the deadline ----------------------------------------------------------------------------------------------

def deadline_alert(mo: MoEntry, settings: Settings) -> DeadlineAlert | None:
    if not settings.export_deadline:
        return None
    callback = SyncCallback(deadline_missed, kwargs={"mo_oid": mo.oid, "mo_code": mo.code})
    clock = settings_mod.deadline_clock(settings.export_deadline)
    if clock is None:
        return DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT,
                             interval=settings_mod.deadline_interval(settings.export_deadline), callback=callback,
                             name=f"export {mo.code} not finished in {settings.export_deadline}")
    return DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
                         interval=clock_interval(settings.schedule_cron, clock), callback=callback,
                         name=f"export {mo.code} not finished by {settings.export_deadline}")


def clock_interval(cron: str, clock: dt.time) -> dt.timedelta:
    """From a daily run's logical date (its interval's start, local) to ``clock`` on the day after, when it runs.

    A daily run with cron "M H * * *" covers [day H:M, next day H:M) and starts at its end; the deadline is the first
    ``clock`` at or after that start. A DeadlineAlert's interval is fixed, so a time of day needs a daily schedule;
    on any other use an interval (8h). The schedule's zone has no DST in Russia, so the interval stays exact."""
    text = {"@daily": "0 0 * * *", "@midnight": "0 0 * * *"}.get(cron, cron)
    match = _DAILY.match(text)
    if match is None:
        raise settings_mod.SettingsError("IEMK_EXPORT_DEADLINE", clock.strftime("%H:%M"),
                                         f"время суток годится только для ежедневного расписания (IEMK_SCHEDULE_CRON="
                                         f"{cron!r}); задайте интервал, например 8h")
    start = dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(1)))
    after = (dt.timedelta(hours=clock.hour, minutes=clock.minute) - start) % dt.timedelta(days=1)
    return dt.timedelta(days=1) + after


def deadline_missed(mo_oid: str, mo_code: str, context: Mapping[str, Any] | None = None) -> None:
    """The scheduler's deadline callback; ``context["dag_run"]`` is the run as the REST API shows it (JSON)."""
    run = dict((context or {}).get("dag_run") or {})
    deadline = (context or {}).get("deadline") or {}
    start, end = _moment(run.get("data_interval_start")), _moment(run.get("data_interval_end"))
    _send(notify.DEADLINE_MISSED, mo_oid, mo_code, str(run.get("dag_id") or _export_dag_id(mo_code)),
          str(run.get("dag_run_id") or run.get("run_id") or "?"), (start, end),
          f"срок {deadline.get('deadline_time', '?')} прошёл, запуск в состоянии {run.get('state', '?')}")


def _export_dag_id(mo_code: str) -> str:
    return integration.dag_id(integration.EXPORT_DAG, mo_code)


def _moment(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value)) if value else None


# -- failure callbacks -------------------------------------------------------------------------------------------

class RunFailed:
    """A DAG run's failure callback: one alert with the failed task and the period's counts."""

    def __init__(self, mo_oid: str, mo_code: str) -> None:
        self.mo_oid, self.mo_code = mo_oid, mo_code
        self.__name__ = f"alert_run_failed_{mo_code}"    # Airflow logs the callback by its name

    def __call__(self, context: Mapping[str, Any]) -> None:
        ti = context.get("ti") or context.get("task_instance")
        detail = f"задача {ti.task_id} (попытка {ti.try_number})" if ti is not None else ""
        reason = context.get("reason")
        detail = "; ".join(p for p in (detail, str(reason) if reason else "") if p)
        dag = context.get("dag")
        _send(notify.RUN_FAILED, self.mo_oid, self.mo_code, getattr(dag, "dag_id", None) or _export_dag_id(
            self.mo_code), str(context.get("run_id")), _interval(context), detail)


class TaskFailed:
    """A task's failure callback (after its last try): one line; the run's alert carries the counts."""

    def __init__(self, mo_oid: str, mo_code: str) -> None:
        self.mo_oid, self.mo_code = mo_oid, mo_code
        self.__name__ = f"log_task_failed_{mo_code}"

    def __call__(self, context: Mapping[str, Any]) -> None:
        ti = context.get("ti")
        exc = context.get("exception")
        log.error("task %s of run %s (МО %s) failed on try %s: %s", getattr(ti, "task_id", "?"),
                  context.get("run_id"), self.mo_code, getattr(ti, "try_number", "?"),
                  type(exc).__name__ if exc is not None else "?")


def _interval(context: Mapping[str, Any]) -> tuple[dt.datetime | None, dt.datetime | None]:
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    run = context.get("dag_run")
    if start is None and run is not None:
        start, end = getattr(run, "data_interval_start", None), getattr(run, "data_interval_end", None)
    return start, end


# -- sending ---------------------------------------------------------------------------------------------------

def _send(event: str, mo_oid: str, mo_code: str, dag_id: str, run_id: str,
          period: tuple[dt.datetime | None, dt.datetime | None], detail: str) -> bool:
    settings = settings_mod.load()
    alert = notify.Alert(event, mo_code, mo_oid, dag_id, run_id, detail, period,
                         _counts(settings, mo_oid, period))
    return notify.deliver(alert, sender(settings))


def _counts(settings: Settings, mo_oid: str, period: tuple[dt.datetime | None, dt.datetime | None]) -> dict[str, int]:
    """The ledger's counts for the run's period; an alert goes without them when the database is out of reach."""
    try:
        with db.connect(resources.source_dsn(settings)) as conn:
            return notify.run_counts(conn, mo_oid, period[0], period[1], settings.timezone)
    except Exception as exc:  # noqa: BLE001 - the database may be the very failure being reported
        log.warning("alert without counts: %s", type(exc).__name__)
        return {}


def sender(settings: Settings) -> notify.Sender:
    """The channel of IEMK_ALERT."""
    if settings.alert_channel == "webhook":
        if not settings.alert_webhook_url:
            raise settings_mod.SettingsError("IEMK_ALERT_WEBHOOK_URL", None, "нужен при IEMK_ALERT=webhook")
        return notify.WebhookSender(settings.alert_webhook_url, settings.alert_timeout)
    if settings.alert_channel == "email":
        return smtp_sender(settings)
    return notify.log_sender


def smtp_sender(settings: Settings) -> notify.SmtpSender:
    from airflow.sdk import Connection

    c = Connection.get(settings.alert_smtp_conn_id)
    extra = c.extra_dejson
    use_ssl = not _flag(extra.get("disable_ssl", False))
    return notify.SmtpSender(
        host=c.host or "localhost", port=int(c.port or (465 if use_ssl else 25)),
        sender=str(extra.get("from_email") or c.login or "iemk-etl@localhost"), recipients=settings.alert_email_to,
        timeout=float(extra.get("timeout") or settings.alert_timeout), login=c.login or None, password=c.password,
        use_ssl=use_ssl, starttls=not use_ssl and not _flag(extra.get("disable_tls", False)))


def _flag(value: object) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")
