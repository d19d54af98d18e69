"""The DAGs of each configured МО.

``iemk_export__<mo code>``: the nightly export of a data interval (and a backfill's days):
check_integration → extract → validate → feed_patients → send → wait_for_replies → recover_lost_answers →
write_statuses. Param ``reprocess`` (e.g. ["failed"]) sends the period's ended documents again in a new round.

``iemk_sign_and_send__<mo code>``: the seed's script "sign and send over a period", run by hand with
params ``from``, ``to`` (dates, inclusive) and ``kinds`` (НСИ 1520 codes; empty = all):
check_integration → form (the seed's «Получить документы»: СЭМД from the period's МИС records) → sign →
extract_documents → validate → feed_patients → send → wait_for_replies → recover_lost_answers → write_statuses.

Tasks pass ledger or document ids (never documents); the database ledger is the record (iemk_etl.pipeline).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, PokeReturnValue, dag, get_current_context, task

from iemk_airflow import alerts, resources
from iemk_airflow.sensor_task import sensor_task
from iemk_etl import periods
from iemk_etl import settings as settings_mod
from iemk_etl.errors import IemkError
from iemk_etl.pipeline import extract as extract_step
from iemk_etl.pipeline import lost, patients, replies, retry
from iemk_etl.pipeline import send as send_step
from iemk_etl.pipeline import sign as sign_step
from iemk_etl.pipeline import validate as validate_step
from iemk_etl.settings import Settings
from iemk_etl.signing import keys
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import audit, db, integration, ledger
from iemk_etl.store.integration import MoEntry
from iemk_etl.store.mis import documents
from iemk_etl.transport import client

log = logging.getLogger(__name__)


def _period(conf: dict[str, Any], start: dt.datetime | None, end: dt.datetime | None,
            tz: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    # A run without a data interval (manual, sign-and-send) takes {"from": D1, "to": D2} (whole local days).
    first, last = periods.open_day_bounds(_day(conf.get("from")), _day(conf.get("to")), tz)
    return start or first, end or last


def _day(value: object) -> dt.date | None:
    return dt.date.fromisoformat(str(value)[:10]) if value else None


# -- tasks shared by both DAGs --------------------------------------------------------------------------

@task.short_circuit
def check_integration(mo_oid: str, mo_code: str) -> bool:
    with db.connect(resources.source_dsn(settings_mod.load())) as conn:
        db.check_current(conn)  # the operator migrates (`iemk-etl db migrate`); a run never does
        on = extract_step.integration_on(conn, mo_oid)
    if not on:
        log.warning("integration %s is OFF for МО %s (%s): nothing is exported, tasks are skipped",
                    integration.EXTERNAL_SYSTEM, mo_code, mo_oid)
    return on


@task
def extract(mo_oid: str, data_interval_start: dt.datetime | None = None,
            data_interval_end: dt.datetime | None = None) -> list[int]:
    cfg = settings_mod.load()
    context = get_current_context()
    conf = context["dag_run"].conf or {}
    reprocess = list((context.get("params") or {}).get("reprocess") or conf.get("reprocess") or [])
    if reprocess and not conf.get("document_ids"):
        # Ended documents of the period chosen by the run's params go again in a new round (as `iemk-etl requeue`).
        start, end = _period(conf, data_interval_start, data_interval_end, cfg.timezone)
        with db.connect(resources.source_dsn(cfg), autocommit=True) as conn:
            retry.requeue(conn, mo_oid, reprocess, start=start, end=end)
    with db.connect(resources.source_dsn(cfg)) as conn:
        if conf.get("document_ids"):
            # «Передать документ в ИЭМК» for chosen documents: exactly those, same ledger and rules.
            return extract_step.extract_documents(conn, mo_oid, [int(i) for i in conf["document_ids"]],
                                                mis_number=cfg.mis_number)
        start, end = _period(conf, data_interval_start, data_interval_end, cfg.timezone)
        return extract_step.extract(conn, mo_oid, start, end, mis_number=cfg.mis_number)


def _sign_and_send_params(params: dict[str, Any], cfg: Settings) -> tuple[dt.datetime, dt.datetime, list[int] | None]:
    """The days and kinds of a sign-and-send run (its params ``from``, ``to``, ``kinds``)."""
    start, end = _period(params, None, None, cfg.timezone)
    if start is None or end is None:
        raise ValueError("sign-and-send needs params 'from' and 'to' (dates)")
    return start, end, [int(k) for k in params.get("kinds") or []] or None


@task
def form(mo_oid: str, params: dict[str, Any] | None = None) -> dict[str, int]:
    """Form the period's documents not formed yet; counts only go to XCom."""
    from iemk_etl.pipeline import forming

    cfg = settings_mod.load()
    start, end, kind_codes = _sign_and_send_params(params or {}, cfg)
    with db.connect(resources.source_dsn(cfg), autocommit=True) as conn:
        report = forming.form_period(conn, mo_oid, start, end, set(kind_codes) if kind_codes else None,
                                     mis_number=cfg.mis_number)
    return {"formed": report.total, "already_formed": report.skipped, "not_formed": len(report.errors)}


@task
def sign(mo_oid: str, params: dict[str, Any] | None = None) -> list[int]:
    cfg = settings_mod.load()
    start, end, kind_codes = _sign_and_send_params(params or {}, cfg)
    with db.connect(resources.source_dsn(cfg), autocommit=True) as conn:
        report = sign_step.sign_period(conn, KeyStore(cfg), mo_oid, start, end, kind_codes)
        already = documents.signed_in_period(conn, mo_oid, start, end)
    log.info("signed now: %s; signed documents of the period: %d", report.counts(), len(already))
    return already


@task
def extract_documents(mo_oid: str, document_ids: list[int]) -> list[int]:
    cfg = settings_mod.load()
    with db.connect(resources.source_dsn(cfg)) as conn:
        return extract_step.extract_documents(conn, mo_oid, document_ids, mis_number=cfg.mis_number)


@task
def validate(ids: list[int]) -> list[int]:
    cfg = settings_mod.load()
    with db.connect(resources.source_dsn(cfg), autocommit=True) as conn:
        return validate_step.validate(conn, ids, cfg)


def _client_or_hold(cfg: Settings, dsn: str, ids: list[int], mo_code: str) -> client.IemkClient:
    """The МО's signed client; if its certificate cannot be used, the waiting documents say so and the task fails."""
    try:
        return resources.iemk_client(cfg, mo_code)
    except keys.KeyMaterialError as exc:
        held = send_step.hold_for_signing_key(dsn, ids, str(exc))
        raise RuntimeError(f"{held} documents held back: request signing certificate: {exc}") from None


@task
def feed_patients(ids: list[int], mo_oid: str, mo_code: str) -> list[int]:
    """Patients before documents: PIX add/revise for the patients ИЭМК does not hold in their current state."""
    cfg = settings_mod.load()
    dsn = resources.source_dsn(cfg)
    iemk = _client_or_hold(cfg, dsn, ids, mo_code)
    with iemk, db.connect(dsn, autocommit=True) as conn:
        report = patients.feed(conn, mo_oid, ids, cfg, iemk)
    if report.transient:
        log.warning("%d patients met a transient ИЭМК error: their documents wait for the next run", report.transient)
    return ids


@task
def send(ids: list[int], mo_code: str) -> list[int]:
    cfg = settings_mod.load()
    dsn = resources.source_dsn(cfg)
    iemk = _client_or_hold(cfg, dsn, ids, mo_code)
    with iemk:
        report = send_step.send(dsn, ids, cfg, iemk)
    sent = _sent_in_this_run(dsn, ids, report.sent)
    if report.transient:
        # Recorded in the ledger already; failing the task makes Airflow retry only those.
        raise RuntimeError(f"{report.transient} documents met a transient ИЭМК error; they will be retried")
    return sent


def _sent_in_this_run(dsn: str, ids: list[int], sent_now: list[int]) -> list[int]:
    """What this DAG run sent: this try's documents and those an earlier try of the task sent (its return value is
    lost when it fails). Documents sent by earlier runs are never awaited here: they take the lost-answer path.

    An earlier try is recognised by its POST's time (the database's clock) against the run's start (Airflow's):
    the two clocks must agree to within the time between the run's start and its first send (extract, validate,
    patients — seconds at least); nightly runs are a day apart, so an earlier run's documents never qualify."""
    started = get_current_context()["dag_run"].start_date
    if started is None:
        return sent_now
    with db.connect(dsn, autocommit=True) as conn:
        return sorted(set(sent_now) | set(ledger.ids_sent_since(conn, ids, started)))


@sensor_task(mode="reschedule", soft_fail=True)
def wait_for_replies(ids: list[int]) -> PokeReturnValue:
    """``ids``: the documents this run sent (the send task's return value), never the older unanswered ones."""
    with db.connect(resources.source_dsn(settings_mod.load()), autocommit=True) as conn:
        answered, awaited = replies.replies_pending(conn, ids)
    log.info("asynchronous answers: %d of %d", answered, awaited)
    return PokeReturnValue(is_done=answered >= awaited)


@task(trigger_rule="none_failed")
def recover_lost_answers(mo_oid: str, mo_code: str) -> dict[str, int]:
    """Documents sent in earlier runs whose answer never came: looked up in ИЭМК (ITI-18), stored or sent again."""
    cfg = settings_mod.load()
    try:
        with db.connect(resources.source_dsn(cfg), autocommit=True) as conn, \
                resources.iemk_client(cfg, mo_code) as iemk:
            counts = lost.recover_lost(conn, iemk, cfg, mo_oid)
            counts["given_up_held_by_iemk"] = lost.recover_given_up(conn, iemk, cfg, mo_oid)
            return counts
    except IemkError as exc:
        # Never in the way of writing the statuses back: the lookup is tried again next run.
        log.error("lost answers of МО %s not looked up: %s", mo_oid, exc)
        return {"lookup_failed": 1}


@task(trigger_rule="none_failed")
def write_statuses(ids: list[int], mo_oid: str) -> dict[str, int]:
    cfg = settings_mod.load()
    with db.connect(resources.source_dsn(cfg), autocommit=True) as conn:
        counts = replies.write_back(conn, mo_oid, ids, quarantine_days=cfg.quarantine_days)
        log.info("audit archive: %d envelopes older than %d days purged",
                 audit.purge(conn, cfg.audit_retention_days), cfg.audit_retention_days)
    return counts


def _deliver(ids: Any, mo: MoEntry, settings: Settings) -> None:
    sent = send(feed_patients(validate(ids), mo.oid, mo.code), mo.code)
    waiting = wait_for_replies.override(poke_interval=settings.reply_poke_seconds,
                                        timeout=settings.reply_timeout_seconds)(sent)
    waiting >> recover_lost_answers(mo.oid, mo.code) >> write_statuses(ids, mo.oid)


# -- the DAGs -------------------------------------------------------------------------------------------

def build_export_dag(mo: MoEntry, settings: Settings) -> DAG:
    """``settings`` shape the DAG (schedule, sensor timing); tasks read theirs when they run."""

    @dag(
        dag_id=integration.dag_id(integration.EXPORT_DAG, mo.code),
        description=f"Экспорт СЭМД в ИЭМК: {mo.name} ({mo.oid})",
        schedule=CronDataIntervalTimetable(settings.schedule_cron, timezone=settings.timezone),
        start_date=pendulum.parse(settings.start_date, tz=settings.timezone),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=settings.task_retry_seconds)},
        params={"mo_oid": Param(mo.oid, type="string", description="МО OID (ФРМО)"),
                "reprocess": Param([], type="array", items={"type": "string", "enum": ["failed", "rejected"]},
                                   description="ended states whose documents of the period go again in a new "
                                               "round (as iemk-etl requeue), e.g. [\"failed\"]")},
        tags=["iemk", mo.code],
        doc_md=__doc__,
        **alerts.dag_kwargs(mo, settings),
    )
    def iemk_export() -> None:
        ids = extract(mo.oid)
        check_integration(mo.oid, mo.code) >> ids
        _deliver(ids, mo, settings)

    return alerts.watch_tasks(iemk_export(), mo)


def _hand_run(settings: Settings) -> dict[str, Any]:
    """A DAG run by hand (never on a schedule), one run at a time."""
    return {"schedule": None, "start_date": pendulum.parse(settings.start_date, tz=settings.timezone),
            "catchup": False, "max_active_runs": 1}


def _period_params() -> dict[str, Param]:
    """The days a hand-run DAG works on (documents created then), both inclusive."""
    return {"from": Param(None, type=["null", "string"], format="date", description="first day (created)"),
            "to": Param(None, type=["null", "string"], format="date", description="last day, inclusive")}


def build_sign_and_send_dag(mo: MoEntry, settings: Settings) -> DAG:
    @dag(
        dag_id=integration.dag_id(integration.SIGN_AND_SEND_DAG, mo.code),
        description=f"Подписание и передача СЭМД за период: {mo.name} ({mo.oid})",
        **_hand_run(settings),
        default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=settings.task_retry_seconds)},
        params={**_period_params(),
                "kinds": Param([], type="array", items={"type": "integer"}, description="НСИ 1520 codes; [] = all")},
        tags=["iemk", mo.code, "sign"],
        doc_md=__doc__,
        on_failure_callback=alerts.RunFailed(mo.oid, mo.code),
    )
    def iemk_sign_and_send() -> None:
        signed = sign(mo.oid)
        check_integration(mo.oid, mo.code) >> form(mo.oid) >> signed
        _deliver(extract_documents(mo.oid, signed), mo, settings)

    return alerts.watch_tasks(iemk_sign_and_send(), mo)


@task
def reconcile_period(mo_oid: str, mo_code: str, params: dict[str, Any] | None = None) -> dict[str, int]:
    from iemk_etl.pipeline import reconcile

    cfg = settings_mod.load()
    start, end = _period(params or {}, None, None, cfg.timezone)
    if start is None or end is None:
        raise ValueError("reconcile needs params 'from' and 'to' (dates)")
    with db.connect(resources.source_dsn(cfg), autocommit=True) as conn, resources.iemk_client(cfg, mo_code) as iemk:
        frame = reconcile.reconcile(conn, iemk, cfg, mo_oid, start, end)
    out = cfg.home / "reports" / f"reconcile-{mo_code}-{params['from']}-{params['to']}.csv"  # type: ignore[index]
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    log.info("reconcile report: %s", out)
    return {str(k): int(v) for k, v in frame["finding"].value_counts().items()} if not frame.empty else {}


def build_reconcile_dag(mo: MoEntry, settings: Settings) -> DAG:
    @dag(
        dag_id=integration.dag_id(integration.RECONCILE_DAG, mo.code),
        description=f"Сверка с ИЭМК: {mo.name} ({mo.oid})",
        **_hand_run(settings),
        params=_period_params(),
        tags=["iemk", mo.code, "reconcile"],
        doc_md="Lists what ИЭМК holds for the МО and period (ITI-18) and compares it with the ledger: re-queues "
               "what is missing there, reports what is unknown here, fixes disagreeing statuses; CSV under "
               "IEMK_HOME/reports.",
    )
    def iemk_reconcile() -> None:
        check_integration(mo.oid, mo.code) >> reconcile_period(mo.oid, mo.code)

    return iemk_reconcile()


def build_all() -> dict[str, DAG]:
    """The DAGs of every МО in the configuration file; reads no database, so it is safe at parse time."""
    settings = settings_mod.load()
    dags = {}
    for mo in integration.read_mo_config(settings.mo_config_path):
        for factory in (build_export_dag, build_sign_and_send_dag, build_reconcile_dag):
            built = factory(mo, settings)
            dags[built.dag_id] = built
    return dags
