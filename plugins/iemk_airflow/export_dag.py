"""The DAGs of each configured МО.

``iemk_export__<mo code>``: the nightly export of a data interval (and a backfill's days):
check_integration → extract (the period's ledger ids, in chunks of whole patients) → validate (mapped over the
chunks) → send (mapped likewise: a chunk's PIX patient feed, then its documents) → wait_for_replies →
write_statuses (first the answers earlier runs lost are looked up in ИЭМК, then the statuses are written back and
the asset event ``iemk://export/<mo code>`` carrying the run's counts is emitted) → check_answers. Few tasks a run
on purpose: with 200 МО a night, every task start costs a worker slot seconds of process start and scheduling
(benchmarks/README.md, "Region run").
A run by hand takes the params ``from``/``to`` (days, inclusive; they win over the run's data interval),
``document_ids`` (exactly these МИС documents) and ``reprocess`` (ended states whose documents of the period go
again in a new round, e.g. ["failed"]). Airflow validates each param when the run is triggered; a key that is not
a param is refused at trigger time by the API server's guard (trigger_guard) and again by extract before it reads.

``iemk_report``: scheduled on the export assets of every МО; writes the status report of the МО whose export
just finished.

``iemk_sign_and_send__<mo code>``: the seed's script "sign and send over a period", run by hand with
params ``from``, ``to`` (dates, inclusive) and ``kinds`` (НСИ 1520 codes; empty = all):
check_integration → form (the seed's «Получить документы»: СЭМД from the period's МИС records) → sign →
extract_documents → validate → send → wait_for_replies → write_statuses → check_answers.

Tasks pass ledger or document ids (never documents); the database ledger is the record (iemk_etl.pipeline).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.sdk import (
    DAG,
    Asset,
    AssetAny,
    CronDataIntervalTimetable,
    Param,
    dag,
    get_current_context,
    get_parsing_context,
    task,
)

from iemk_airflow import alerts, mo_list, reply_wait
from iemk_airflow.lazy import lazy
from iemk_airflow.pools import API_POOL
from iemk_etl import periods
from iemk_etl import settings as settings_mod
from iemk_etl.errors import IemkError
from iemk_etl.settings import Settings
from iemk_etl.store import integration
from iemk_etl.store.integration import MoEntry

# What the task bodies use is imported when a task first needs it, never at parse time (a worker parses this file
# before every task: building one DAG costs milliseconds, importing the pipeline about a second). Keep new imports
# of the pipeline, the store, signing and transport in this form.
resources = lazy("iemk_airflow.resources")
extract_step = lazy("iemk_etl.pipeline.extract")
lost = lazy("iemk_etl.pipeline.lost")
patients = lazy("iemk_etl.pipeline.patients")
replies = lazy("iemk_etl.pipeline.replies")
retry = lazy("iemk_etl.pipeline.retry")
chunks = lazy("iemk_etl.pipeline.chunks")
send_step = lazy("iemk_etl.pipeline.send")
sign_step = lazy("iemk_etl.pipeline.sign")
validate_step = lazy("iemk_etl.pipeline.validate")
keys = lazy("iemk_etl.signing.keys")
audit = lazy("iemk_etl.store.audit")
db = lazy("iemk_etl.store.db")
ledger = lazy("iemk_etl.store.ledger")
documents = lazy("iemk_etl.store.mis.documents")
client = lazy("iemk_etl.transport.client")

log = logging.getLogger(__name__)


def _period(conf: dict[str, Any], start: dt.datetime | None, end: dt.datetime | None,
            tz: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    # {"from": D1, "to": D2} (whole local days) win over the run's data interval: a run triggered by hand with a
    # logical date has an interval inferred from the trigger time, and the form must do what it says.
    first, last = periods.open_day_bounds(_day(conf.get("from")), _day(conf.get("to")), tz)
    return first or start, last or end


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


def export_params() -> dict[str, Param]:
    """The export DAG's trigger form: every key a run reads, each validated by Airflow when the run is created."""
    ended = ["failed", "rejected"]   # = retry.REQUEUABLE (a test holds them equal); not imported at parse time
    return {
        **_period_params(),
        "document_ids": Param([], type="array", items={"type": "integer", "minimum": 1}, uniqueItems=True,
                              description="МИС document ids (mis.semd_document.id) to send, exactly these; "
                                          "[] = the period's documents"),
        "reprocess": Param([], type="array", items={"type": "string", "enum": ended}, uniqueItems=True,
                           description=f"ended states ({', '.join(ended)}) whose documents of the period go again "
                                       "in a new round (as iemk-etl requeue); [] = none"),
    }


def run_params(params: dict[str, Any], conf: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    """The run's params, once more refusing what Airflow lets through: keys that are not params (Airflow adds
    them to params without a schema) and a period that ends before it starts."""
    unknown = sorted(set(conf) - allowed)
    if unknown:
        raise ValueError(f"unknown param(s) {unknown}: this DAG takes only {sorted(allowed)}")
    first, last = _day(params.get("from")), _day(params.get("to"))
    if first and last and first > last:
        raise ValueError(f"param 'from' ({first}) is after 'to' ({last})")
    return params


@task
def extract(mo_oid: str, data_interval_start: dt.datetime | None = None,
            data_interval_end: dt.datetime | None = None) -> list[list[int]]:
    cfg = settings_mod.load()
    context = get_current_context()
    params = run_params(dict(context.get("params") or {}), context["dag_run"].conf or {}, set(export_params()))
    document_ids = [int(i) for i in params.get("document_ids") or []]
    reprocess = list(params.get("reprocess") or [])
    start, end = _period(params, data_interval_start, data_interval_end, cfg.timezone)
    if reprocess and not document_ids:
        # Ended documents of the period chosen by the run's params go again in a new round (as `iemk-etl requeue`).
        with db.connect(resources.source_dsn(cfg), autocommit=True) as conn:
            retry.requeue(conn, mo_oid, reprocess, start=start, end=end)
    with db.connect(resources.source_dsn(cfg)) as conn:
        if document_ids:
            # «Передать документ в ИЭМК» for chosen documents: exactly those, same ledger and rules.
            ids = extract_step.extract_documents(conn, mo_oid, document_ids, mis_number=cfg.mis_number)
        else:
            ids = extract_step.extract(conn, mo_oid, start, end, mis_number=cfg.mis_number)
        return _chunked(conn, ids, cfg)


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
        # The МО's and authors' keys: Airflow connections first (iemk_sign__<mo>__org, __staff__<id>), then files.
        report = sign_step.sign_period(conn, resources.key_store(cfg), mo_oid, start, end, kind_codes)
        already = documents.signed_in_period(conn, mo_oid, start, end)
    log.info("signed now: %s; signed documents of the period: %d", report.counts(), len(already))
    return already


@task
def extract_documents(mo_oid: str, document_ids: list[int]) -> list[list[int]]:
    cfg = settings_mod.load()
    with db.connect(resources.source_dsn(cfg)) as conn:
        ids = extract_step.extract_documents(conn, mo_oid, document_ids, mis_number=cfg.mis_number)
        return _chunked(conn, ids, cfg)


def _chunked(conn: Any, ids: list[int], cfg: Settings) -> list[list[int]]:
    """The run's ledger ids in chunks of whole patients (IEMK_CHUNK_DOCUMENTS, IEMK_CHUNK_BYTES): validate and send
    are mapped over them, so a run uses every worker slot and no worker holds the whole night's documents. Planned
    here rather than in a task of its own: one task start less a run (only a task's return value can be mapped)."""
    planned = chunks.plan(conn, ids, max_documents=cfg.chunk_documents, max_bytes=cfg.chunk_bytes)
    log.info("%d documents in %d chunks (≤ %d documents, ≤ %d bytes each)", len(ids), len(planned),
             cfg.chunk_documents, cfg.chunk_bytes)
    return planned


@task
def validate(ids: list[int]) -> list[int]:
    """One chunk's format control: the ids that may go on (the chunk's send takes them)."""
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
def send(ids: list[int], mo_oid: str, mo_code: str) -> list[int]:
    """One chunk of whole patients: first the patients ИЭМК does not hold in their current state (PIX add/revise),
    then the chunk's valid documents. Row locks (FOR UPDATE SKIP LOCKED, one document a transaction) keep
    concurrent chunks and overlapping runs from sending a document twice."""
    cfg = resources.mo_settings(settings_mod.load(), mo_code)  # its iemk connection, if any
    dsn = resources.source_dsn(cfg)
    iemk = _client_or_hold(cfg, dsn, ids, mo_code)
    with iemk:
        with db.connect(dsn, autocommit=True) as conn:
            fed = patients.feed(conn, mo_oid, ids, cfg, iemk)
        if fed.transient:
            log.warning("%d patients met a transient ИЭМК error: their documents wait for the next run",
                        fed.transient)
        report = send_step.send(dsn, ids, cfg, iemk)
    sent = _sent_in_this_run(dsn, ids, report.sent)
    if report.transient:
        # Recorded in the ledger already; failing the task makes Airflow retry only those (this chunk).
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


def wait_for_replies(sent: Any, settings: Settings) -> Any:
    """The wait for the answers to what the run's chunks sent (reply_wait: deferrable or reschedule)."""
    return reply_wait.wait_for_replies(sent, settings, execution_timeout=dt.timedelta(
        seconds=settings.reply_timeout_seconds + reply_wait.backstop_margin(settings.reply_poke_seconds)))


def _recover_lost_answers(cfg: Settings, mo_oid: str, mo_code: str) -> dict[str, int]:
    """Documents sent in earlier runs whose answer never came: looked up in ИЭМК (ITI-18), stored or sent again."""
    try:
        with db.connect(resources.source_dsn(cfg), autocommit=True) as conn, \
                resources.iemk_client(cfg, mo_code) as iemk:
            counts = lost.recover_lost(conn, iemk, cfg, mo_oid)
            counts["given_up_held_by_iemk"] = lost.recover_given_up(conn, iemk, cfg, mo_oid)
    except IemkError as exc:
        # Never in the way of writing the statuses back (ИЭМК down, a certificate that cannot be used): the lookup
        # is tried again next run.
        log.error("lost answers of МО %s not looked up: %s", mo_oid, exc)
        return {"lookup_failed": 1}
    log.info("lost answers of earlier runs: %s", counts)
    return counts


@task(trigger_rule="all_done")
def write_statuses(planned: list[list[int]] | None, mo_oid: str, mo_code: str) -> dict[str, int]:
    """Runs whatever happened upstream (a reply timeout, a failed chunk). First the answers earlier runs lost are
    looked up in ИЭМК (a task of its own before: merged to save a task start a run), then what is known is written
    back for the run's documents (all its chunks). In the export DAG it then emits the МО's asset event with the
    counts (its outlet): only when it succeeded."""
    cfg = resources.mo_settings(settings_mod.load(), mo_code)  # its iemk connection, if any
    _recover_lost_answers(cfg, mo_oid, mo_code)
    with db.connect(resources.source_dsn(cfg), autocommit=True) as conn:
        counts = replies.write_back(conn, mo_oid, chunks.union(planned or []), quarantine_days=cfg.quarantine_days)
        log.info("audit archive: %d envelopes older than %d days purged",
                 audit.purge(conn, cfg.audit_retention_days), cfg.audit_retention_days)
    _publish_counts(mo_oid, mo_code, counts)
    return counts


@task(trigger_rule="none_failed", retries=0)
def check_answers(sent: Any) -> dict[str, int]:
    """The run's verdict on the answers: fails, saying how many are missing, when ИЭМК did not answer every
    document the run sent within IEMK_REPLY_TIMEOUT_SECONDS (they keep a note and take the lost-answer path)."""
    cfg = settings_mod.load()
    ids = chunks.union(sent or [])
    with db.connect(resources.source_dsn(cfg), autocommit=True) as conn:
        missing = replies.settle_missing(conn, ids, dt.timedelta(seconds=cfg.reply_timeout_seconds))
    if missing:
        raise replies.missing_answers_error(missing)
    return {"sent": len(ids), "missing": 0}


def _iemk_task(settings: Settings) -> dict[str, Any]:
    """Task arguments of a task that calls ИЭМК: the shared pool, exponential backoff between retries."""
    return {"pool": API_POOL, "retry_exponential_backoff": 2.0,
            "max_retry_delay": dt.timedelta(seconds=settings.task_max_retry_seconds),
            "execution_timeout": _task_timeout(settings)}


def _task_timeout(settings: Settings) -> dt.timedelta:
    return dt.timedelta(seconds=settings.task_timeout_seconds)


def _deliver(planned: Any, mo: MoEntry, settings: Settings, outlets: list[Asset] | None = None) -> None:
    limit = {"execution_timeout": _task_timeout(settings)}
    valid = validate.override(**limit).expand(ids=planned)
    sent = send.override(**_iemk_task(settings)).partial(mo_oid=mo.oid, mo_code=mo.code).expand(ids=valid)
    waiting = wait_for_replies(sent, settings)
    # It calls ИЭМК (the lost-answer lookups): the pool and the backoff of the tasks that do.
    written = write_statuses.override(outlets=outlets or [], **_iemk_task(settings))(planned, mo.oid, mo.code)
    waiting >> written >> check_answers.override(**limit)(sent)
    _run_limits(planned.operator.dag, settings)


def _run_limits(dag: DAG, settings: Settings) -> None:
    """dagrun_timeout on the DAG and execution_timeout on every task that has none yet (IEMK_DAGRUN_TIMEOUT_SECONDS,
    IEMK_TASK_TIMEOUT_SECONDS): a run or a task that hangs fails visibly instead of holding its slot."""
    dag.dagrun_timeout = dt.timedelta(seconds=settings.dagrun_timeout_seconds)
    for op in dag.tasks:
        if getattr(op, "execution_timeout", None) is None and not getattr(op, "is_mapped", False):
            op.execution_timeout = _task_timeout(settings)


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
        params=export_params(),
        tags=["iemk", mo.code],
        doc_md=__doc__,
        **alerts.dag_kwargs(mo, settings),
    )
    def iemk_export() -> None:
        planned = extract(mo.oid)
        check_integration(mo.oid, mo.code) >> planned
        _deliver(planned, mo, settings, outlets=[export_asset(mo.code)])

    return alerts.watch_tasks(iemk_export(), mo)


def export_asset(mo_code: str) -> Asset:
    """The asset an МО's export updates: one event per run whose statuses were written, its extra the counts."""
    return Asset(name=f"iemk_export__{mo_code}", uri=f"iemk://export/{mo_code}", group="iemk")


def _publish_counts(mo_oid: str, mo_code: str, counts: Any) -> None:
    """The extra of the export asset's event, when the running task has that outlet (the export DAG's
    write_statuses; the sign-and-send DAG's has none)."""
    context = get_current_context()
    asset = export_asset(mo_code)
    if asset not in (getattr(context["task"], "outlets", None) or []):
        return
    interval = (context.get("data_interval_start"), context.get("data_interval_end"))
    extra = {"mo_oid": mo_oid, "mo_code": mo_code, "run_id": context["dag_run"].run_id,
             "counts": _json_counts(counts),
             "interval": [d.isoformat() if d else None for d in interval]}
    context["outlet_events"][asset].extra = extra
    log.info("asset %s: %s", asset.uri, extra)


def _json_counts(counts: Any) -> dict[str, Any]:
    # write_statuses returns {name: count}; anything else is carried as it is, JSON-safe.
    if isinstance(counts, dict):
        return {str(k): (int(v) if isinstance(v, int | float) else v) for k, v in counts.items()}
    return {"value": counts}


def _hand_run(settings: Settings) -> dict[str, Any]:
    """A DAG run by hand (never on a schedule), one run at a time."""
    return {"schedule": None, "start_date": pendulum.parse(settings.start_date, tz=settings.timezone),
            "catchup": False, "max_active_runs": 1}


def _period_params() -> dict[str, Param]:
    """The days a hand-run DAG works on (documents created then), both inclusive."""
    return {"from": Param(None, type=["null", "string"], format="date",
                          description="first day (documents created), YYYY-MM-DD; empty = the run's data interval"),
            "to": Param(None, type=["null", "string"], format="date",
                        description="last day, inclusive, YYYY-MM-DD; empty = the run's data interval")}


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

    cfg = resources.mo_settings(settings_mod.load(), mo_code)  # its iemk connection, if any
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


REPORT_DAG_ID = "iemk_report"


@task
def report_statuses() -> dict[str, Any]:
    """The status report of the МО whose export events started this run."""
    from iemk_airflow import report_hook

    context = get_current_context()
    events = [e for evs in (context.get("triggering_asset_events") or {}).values() for e in evs]
    mo_oids = sorted({str(e.extra["mo_oid"]) for e in events if e.extra and e.extra.get("mo_oid")})
    for event in events:
        log.info("export finished: %s %s", event.extra.get("mo_code") if event.extra else "?",
                 event.extra.get("counts") if event.extra else {})
    cfg = settings_mod.load()
    days = report_hook.days_of([e.extra.get("interval") or [] for e in events if e.extra])
    return report_hook.write_report(cfg, mo_oids, context["dag_run"].run_id, days)


def build_report_dag(entries: list[MoEntry], settings: Settings) -> DAG:
    @dag(
        dag_id=REPORT_DAG_ID,
        description="Отчёт о передаче СЭМД в ИЭМК после экспорта МО",
        schedule=AssetAny(*(export_asset(mo.code) for mo in entries)),
        start_date=pendulum.parse(settings.start_date, tz=settings.timezone),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=settings.task_retry_seconds)},
        tags=["iemk", "report"],
        doc_md="Runs when any МО's export run has written its statuses (asset `iemk://export/<mo code>`); "
               "reports the МО of the triggering events (files under IEMK_HOME/reports).",
    )
    def iemk_report() -> None:
        report_statuses()

    return iemk_report()


_FACTORIES = ((integration.EXPORT_DAG, build_export_dag), (integration.SIGN_AND_SEND_DAG, build_sign_and_send_dag),
              (integration.RECONCILE_DAG, build_reconcile_dag))


def build_all() -> dict[str, DAG]:
    """The DAGs of every МО of the МО list (iemk_airflow.mo_list), and the report DAG.

    When a worker runs a task, Airflow's parsing context names the DAG being run: only that one is built (with
    200 МО a full parse builds 601 DAGs). The dag-processor parses without a context and gets them all."""
    settings = settings_mod.load()
    wanted = get_parsing_context().dag_id
    entries = mo_list.configured_mo(settings)
    dags: dict[str, DAG] = {}
    for mo in entries:
        for prefix, factory in _FACTORIES:
            if wanted is None or wanted == integration.dag_id(prefix, mo.code):
                built = factory(mo, settings)
                dags[built.dag_id] = built
    if entries and wanted in (None, REPORT_DAG_ID):
        dags[REPORT_DAG_ID] = build_report_dag(entries, settings)
    return dags
