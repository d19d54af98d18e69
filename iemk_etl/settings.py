"""Settings of iemk-etl: the only module that reads the environment.

Everything a task or a command needs is resolved and checked here, once, at ``load()``, so that the Airflow glue,
the CLI and the tests agree on names and defaults, and a malformed value fails at start with the variable's name
instead of deep inside a send. Nothing here touches a database or the network. Every variable is listed in the
README (Configuration). Other modules take the values they need as parameters; none reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from iemk_etl.errors import ConfigurationError

EXTERNAL_SYSTEM = "fed_iemk"

# Installation defaults, documented in the README. Each installation may override them.
DEFAULT_TIMEZONE = "Europe/Moscow"
DEFAULT_REPOSITORY_UNIQUE_ID = "1.2.643.5.1.13.2.7.100.1"       # the ИЭМК XDS repository (ITI-43 RepositoryUniqueId)
DEFAULT_RECEIVER_DEVICE_ID = "d5a0f9c0-5db4-11e3-949a-0800200c9a66"  # the ИЭМК device addressed by HL7v3 messages
DEFAULT_PROCESSING_CODE = "P"                                   # HL7v3 processingCode: P production, D debug, T test
DEFAULT_RETRY_LADDER = "1m,5m,30m,2h,6h,1d,2d,3d"  # minutes within a run, then the next runs, up to days
DEFAULT_MIS_NUMBER = "100.1.1"   # <100>.<МИС>.<экземпляр МИС>: the arcs of our identifiers under the МО's OID
DEFAULT_SYSTEM_NAME = "iemk-etl"  # HL7v3 sender/device/name: the name our system is registered under in ЕГИСЗ
# wsa:Action of the PDQ query: IHE ITI-47 (PRPA_IN201305UV02) first, the default — no public evidence says what
# ИЭМК expects — and the short spelling iemk-etl used before; protocol.hl7v3.pdq.ACTIONS answers each.
PDQ_ACTIONS = ("urn:hl7-org:v3:PRPA_IN201305UV02", "urn:hl7-org:v3:PRPA_IN201305")
# = protocol.xml.MAX_MESSAGE_BYTES: the largest message (assumed: no public figure)
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DEFAULT_FNSI_URL = "https://nsi.rosminzdrav.ru/port/rest"   # the ФНСИ REST API (docs/nsi.md)
MIN_MESSAGE_BYTES = 1024 * 1024                # a smaller limit would refuse ordinary СЭМД: a mistake, not a policy

SERVICE_PATHS = {  # the emulator's paths; the ИПС publishes each service under an opaque path of its own
    "IEMK_REPOSITORY_URL": "/xds/repository",
    "IEMK_REGISTRY_URL": "/xds/registry",
    "IEMK_PIX_URL": "/pix",
    "IEMK_PDQ_URL": "/pdq",
}
P12_VARIABLE = "IEMK_P12_PASSWORD"  # a variable name; the passwords are read at load
GOST_BACKENDS = ("auto", "openssl", "python")
PROCESSING_CODES = ("P", "D", "T")
REPLY_SIGNATURE_MODES = ("off", "require")
MO_SOURCES = ("variable", "file", "database")   # where the DAG glue finds the МО that get DAGs (IEMK_MO_SOURCES)
XDS_LAYOUTS = ("evidence", "legacy")   # protocol.xds.common.LAYOUTS; the first is the default
REPLY_WAIT_MODES = ("deferrable", "reschedule")   # the export DAG's reply wait: in the triggerer, or rescheduled pokes
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ALERT_CHANNELS = ("log", "email", "webhook")   # iemk_etl.notify: where a failed or late export run is reported
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_MIS_NUMBER = re.compile(r"^100\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_SHA256 = re.compile(r"^(sha256:)?([0-9a-f]{2}:?){31}[0-9a-f]{2}$", re.IGNORECASE)

T = TypeVar("T")


class SettingsError(ConfigurationError, ValueError):
    """A setting is malformed or missing where it is needed; names the variable and the value."""

    def __init__(self, variable: str, value: str | None, expected: str) -> None:
        shown = "не задана" if value is None else f"={value!r}"
        super().__init__(f"настройка {variable}{shown}: {expected}")
        self.variable = variable
        self.value = value


@dataclass(frozen=True)
class Settings:
    home: Path
    source_dsn: str | None
    source_conn_id: str | None           # inside Airflow: the МИС database from this Airflow connection
    packs_dir: Path | None
    require_packs: bool
    logical_control: bool
    iemk_url: str | None
    repository_url: str | None           # ITI-41 and ITI-43
    registry_url: str | None             # ITI-18
    pix_url: str | None                  # HL7v3 PIX feed
    pdq_url: str | None                  # HL7v3 PDQ query
    callback_url: str | None
    client_entity_id: str | None         # no default: a real ИЭМК must know who we are
    sign_cert: Path | None               # fallback request certificate of an МО without its own
    sign_key: Path | None
    keys_dir: Path
    mo_config_path: Path
    gost_backend: str
    cert_warn_days: int
    http_timeout: float
    retry_ladder: tuple[dt.timedelta, ...]   # waits after each transient failure; past the last, the document ends
    lost_answer_hours: float             # a sent document without an answer this long is looked up in ИЭМК
    reply_poke_seconds: float
    reply_timeout_seconds: float
    task_retry_seconds: float            # Airflow's wait before a failed task's retry (the DAGs' retry_delay)
    audit_retention_days: int            # the audit archive of exchanged envelopes keeps this many days
    schedule_cron: str
    timezone: str
    start_date: str
    repository_unique_id: str
    receiver_device_id: str
    processing_code: str
    mis_number: str
    emulator_dsn: str | None
    emulator_faults: str | None          # JSON or a JSON file; parsed by the emulator itself
    emulator_clients: frozenset[str] | None   # the clientEntityIds of IEMK_EMULATOR_CLIENTS, bound or not
    emulator_mo: frozenset[str] | None
    dags_folder: Path | None
    airflow_log_level: str
    # Secrets: never in repr (a logged Settings must not show them).
    p12_passwords: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    quarantine_days: int = 30            # replies relating to nothing we sent are kept this long, then purged
    reply_signature: str = "off"          # IEMK_REPLY_SIGNATURE: off | require (a valid, pinned signature on replies)
    reply_certificates: tuple[str, ...] = ()   # pins of ИЭМК's reply certificates: paths or SHA-256 fingerprints
    # IEMK_EMULATOR_CLIENTS entries ID=CERT: the certificate pins (paths or fingerprints) each registered system signs
    # with; an ID without any stays unbound (the emulator warns at start).
    emulator_client_certificates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    emulator_reply_threads: int = 4      # IEMK_EMULATOR_REPLY_THREADS: the emulator's reply senders at once
    system_name: str = DEFAULT_SYSTEM_NAME   # HL7v3 sender/device/name
    pdq_action: str = PDQ_ACTIONS[0]         # wsa:Action of the PDQ query
    # The largest message sent or accepted (an HTTP body, an XML document): over it the client refuses to send,
    # the emulator and the callback receiver answer 413.
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    xds_metadata_layout: str = "evidence"  # ITI-41/ITI-18 metadata: evidence (kind in classCode) | legacy (formatCode)
    # IEMK_PACKS_DIR: the packs `iemk-etl packs install` put there; looked up before IEMK_SEMD_PACKS (read-only).
    installed_packs_dir: Path | None = None
    fnsi_url: str = DEFAULT_FNSI_URL        # IEMK_FNSI_URL: the ФНСИ REST API `iemk-etl nsi sync` downloads from
    fnsi_user_key: str | None = field(default=None, repr=False, compare=False)   # IEMK_FNSI_USER_KEY: a secret
    require_nsi: bool = False               # IEMK_REQUIRE_NSI: a dictionary not held is an error, not a warning
    # Alerts (iemk_etl.notify, plugins/iemk_airflow/alerts.py): a failed export run or one not finished in time.
    alert_channel: str = "log"              # IEMK_ALERT: log | email | webhook
    alert_smtp_conn_id: str = "smtp_default"    # IEMK_ALERT_SMTP_CONN_ID: the Airflow connection of the SMTP server
    alert_email_to: tuple[str, ...] = ()    # IEMK_ALERT_EMAIL_TO: recipients, comma-separated
    alert_webhook_url: str | None = None    # IEMK_ALERT_WEBHOOK_URL: JSON POST of each alert
    alert_timeout: float = 10.0             # IEMK_ALERT_TIMEOUT: seconds for the SMTP dialogue or the webhook POST
    # IEMK_EXPORT_DEADLINE: "HH:MM" (local time on the morning the nightly run starts) or an interval (8h, 90m)
    # after the run is queued; None: no deadline alert.
    export_deadline: str | None = None
    # IEMK_MO_SOURCES: where the МО that get DAGs are listed, tried in this order; the first that answers wins.
    mo_sources: tuple[str, ...] = ("variable", "file")
    # IEMK_FLK_PROCESSES: worker processes validate's ФЛК of a large batch uses (1: in the task's own process).
    # 1 by default: on an executor the parallelism is the mapped chunks across worker slots, and a pool in each
    # task process would oversubscribe the cores and compile every pack again per chunk. The in-process runner of
    # `iemk-etl export` (one process for all tasks) sets it to the cores and keeps its pool for the whole export.
    flk_processes: int = 1
    # The export DAG's chunks (issue 14.1): at most this many documents and this many bytes of СЭМД each (a single
    # larger document makes a chunk of its own).
    chunk_documents: int = 200              # IEMK_CHUNK_DOCUMENTS
    chunk_bytes: int = 64 * 1024 * 1024     # IEMK_CHUNK_BYTES
    api_pool_slots: int = 4                 # IEMK_API_POOL_SLOTS: the Airflow pool iemk_api (concurrent ИЭМК tasks)
    reply_wait: str = REPLY_WAIT_MODES[0]   # IEMK_REPLY_WAIT: deferrable | reschedule
    task_timeout_seconds: float = 3 * 3600.0     # IEMK_TASK_TIMEOUT_SECONDS: execution_timeout of each task
    task_max_retry_seconds: float = 1800.0       # IEMK_TASK_MAX_RETRY_SECONDS: the cap of the exponential backoff
    dagrun_timeout_seconds: float = 12 * 3600.0  # IEMK_DAGRUN_TIMEOUT_SECONDS: a run not finished by then fails

    @property
    def pack_sources(self) -> tuple[Path, ...]:
        """Where ФЛК looks for a kind's pack, in order: the installed packs, then IEMK_SEMD_PACKS."""
        return tuple(p for p in (self.installed_packs_dir, self.packs_dir) if p is not None)

    @property
    def require_signed_replies(self) -> bool:
        return self.reply_signature == "require"

    def p12_password(self, mo_code: str) -> str | None:
        """IEMK_P12_PASSWORD__<MO CODE>, else IEMK_P12_PASSWORD, else None (a container without a password)."""
        own = self.p12_passwords.get(f"{P12_VARIABLE}__{mo_code.upper()}")
        return own or self.p12_passwords.get(P12_VARIABLE)

    def require_client_entity_id(self) -> str:
        """The clientEntityId for anything sent to ИЭМК; refuses when the installation has not set one."""
        if not self.client_entity_id:
            raise SettingsError("IEMK_CLIENT_ENTITY_ID", None,
                                "задайте идентификатор информационной системы, выданный при регистрации в ЕГИСЗ "
                                "(transportHeader/authInfo/clientEntityId): без него в ИЭМК ничего не отправляется")
        return self.client_entity_id

    def with_iemk_url(self, url: str) -> Settings:
        """These settings pointed at another ИЭМК (an emulator in tests and benchmarks): every service under it."""
        services = {_field_of(variable): _join(url, path) for variable, path in SERVICE_PATHS.items()}
        return dataclasses.replace(self, iemk_url=url, **services)


def _field_of(variable: str) -> str:
    return variable.removeprefix("IEMK_").lower()


def _join(base: str, path: str) -> str:
    return f"{base.rstrip('/')}{path}"


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process of ours (the Airflow runner): this process's, with ``extra`` over it."""
    return {**os.environ, **(extra or {})}


# -- reading and checking one variable ---------------------------------------------------------------------------

class _Reader:
    """Reads variables from one snapshot of the environment; every check names the variable it reads."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name)
        return value.strip() if value not in (None, "") and value.strip() else default

    def checked(self, name: str, parse: Callable[[str], T], expected: str, default: T) -> T:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except (ValueError, TypeError, ZoneInfoNotFoundError):
            raise SettingsError(name, raw, expected) from None

    def boolean(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            word = raw.lower()
            if word not in _TRUE | _FALSE:
                raise ValueError(raw)
            return word in _TRUE

        return self.checked(name, parse, "ожидается true/false (1/0, yes/no, on/off)", default)

    def integer(self, name: str, default: int, minimum: int) -> int:
        return self.checked(name, lambda raw: _at_least(int(raw), minimum), f"ожидается целое число ≥ {minimum}",
                            default)

    def number(self, name: str, default: float) -> float:
        return self.checked(name, lambda raw: _at_least(float(raw), 0.0, strict=True),
                            "ожидается положительное число (секунды)", default)

    def url(self, name: str) -> str | None:
        return self.checked(name, _url, "ожидается адрес http:// или https:// с именем хоста", None)

    def path(self, name: str, *, kind: str | None = None) -> Path | None:
        """A path; ``kind`` 'dir' or 'file' when it must already exist."""
        raw = self.text(name)
        if raw is None:
            return None
        path = Path(raw).expanduser()
        if kind == "dir" and not path.is_dir():
            raise SettingsError(name, raw, "такой папки нет")
        if kind == "file" and not path.is_file():
            raise SettingsError(name, raw, "такого файла нет")
        return path.resolve() if kind else path

    def choice(self, name: str, default: str, allowed: tuple[str, ...], *, upper: bool = False) -> str:
        def parse(raw: str) -> str:
            value = raw.upper() if upper else raw.lower()
            if value not in allowed:
                raise ValueError(raw)
            return value

        return self.checked(name, parse, f"ожидается одно из: {', '.join(allowed)}", default)

    def pattern(self, name: str, default: str, regex: re.Pattern[str], expected: str) -> str:
        def parse(raw: str) -> str:
            if not regex.match(raw):
                raise ValueError(raw)
            return raw

        return self.checked(name, parse, expected, default)

    def listed(self, name: str) -> frozenset[str] | None:
        raw = self.text(name, "") or ""
        return frozenset(v.strip() for v in raw.split(",") if v.strip()) or None

    def prefixed(self, prefix: str) -> dict[str, str]:
        return {k: v for k, v in self.environ.items() if (k == prefix or k.startswith(f"{prefix}__")) and v}


def _at_least(value: T, minimum: float, *, strict: bool = False) -> T:
    if value < minimum or (strict and value == minimum):  # type: ignore[operator]
        raise ValueError(value)
    return value


def _url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(raw)
    parts.port  # noqa: B018 - raises ValueError on a malformed port
    return raw


def _zone(raw: str) -> str:
    if not raw or raw.startswith("/") or ".." in raw:
        raise ValueError(raw)  # ZoneInfo would read a file path; a time zone is a name
    ZoneInfo(raw)
    return raw


def _date(raw: str) -> str:
    dt.date.fromisoformat(raw)
    return raw


_STEP = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


_CLOCK = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")


def _deadline(raw: str) -> str:
    """HH:MM (a time of day) or one positive interval such as 8h or 90m."""
    if _CLOCK.match(raw) is None and len(_ladder(raw)) != 1:    # _ladder raises on a malformed interval
        raise ValueError(raw)
    return raw


def deadline_clock(raw: str) -> dt.time | None:
    """The time of day of an IEMK_EXPORT_DEADLINE given as HH:MM; None when it is an interval."""
    match = _CLOCK.match(raw)
    return dt.time(int(match.group(1)), int(match.group(2))) if match else None


def deadline_interval(raw: str) -> dt.timedelta:
    """The interval of an IEMK_EXPORT_DEADLINE given as one (8h, 90m)."""
    return _ladder(raw)[0]


def _ladder(raw: str) -> tuple[dt.timedelta, ...]:
    """The backoff ladder: positive intervals such as 1m,5m,2h,1d, at least one."""
    steps = []
    for item in raw.split(","):
        match = _STEP.match(item.strip().lower())
        if not match or float(match.group(1)) <= 0:
            raise ValueError(item)
        steps.append(dt.timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)]))
    return tuple(steps)


def _pin(raw: str) -> str:
    # A certificate pin: a SHA-256 fingerprint or a certificate file (signing.pinning reads it).
    if not _SHA256.match(raw) and not Path(raw).expanduser().is_file():
        raise ValueError(raw)
    return raw


def _pdq_action(raw: str) -> str:
    if raw not in PDQ_ACTIONS:
        raise ValueError(raw)
    return raw


def _pins(env: _Reader, name: str) -> tuple[str, ...]:
    expected = "ожидаются через запятую пути к файлам сертификатов или отпечатки SHA-256"
    return env.checked(name, lambda raw: tuple(_pin(v.strip()) for v in raw.split(",") if v.strip()), expected, ())


def _clients(env: _Reader) -> tuple[frozenset[str] | None, dict[str, tuple[str, ...]]]:
    """IEMK_EMULATOR_CLIENTS: ID or ID=CERT (a path or a SHA-256 fingerprint), comma-separated; an ID may repeat."""
    def parse(raw: str) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
        ids: set[str] = set()
        bound: dict[str, tuple[str, ...]] = {}
        for item in (v.strip() for v in raw.split(",")):
            client, _, cert = (part.strip() for part in item.partition("="))
            if not item:
                continue
            if not client or ("=" in item and not cert):
                raise ValueError(item)
            ids.add(client)
            if cert:
                bound[client] = (*bound.get(client, ()), _pin(cert))
        return frozenset(ids), bound

    ids, bound = env.checked("IEMK_EMULATOR_CLIENTS", parse, "ожидаются через запятую ID или ID=сертификат "
                             "(путь к файлу или отпечаток SHA-256)", (frozenset(), {}))
    return ids or None, bound


def _faults(raw: str) -> str:
    # The emulator parses the profile; here only a file that does not exist is caught early.
    if not raw.lstrip().startswith("{") and not Path(raw).is_file():
        raise ValueError(raw)
    return raw


def _mo_sources(raw: str) -> tuple[str, ...]:
    sources = tuple(s.strip().lower() for s in raw.split(",") if s.strip())
    if not sources or any(s not in MO_SOURCES for s in sources) or len(set(sources)) != len(sources):
        raise ValueError(raw)
    return sources


# -- cron --------------------------------------------------------------------------------------------------------

_CRON_PRESETS = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"}
_CRON_FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()),
                (1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
                (0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")))


def _cron(raw: str) -> str:
    """A five-field cron expression (or an Airflow preset such as @daily): ranges, lists, steps, names."""
    if raw in _CRON_PRESETS:
        return raw
    fields = raw.split()
    if len(fields) != 5:
        raise ValueError(raw)
    for text, (low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            _cron_item(item.lower(), low, high, names)
    return raw


def _cron_item(item: str, low: int, high: int, names: tuple[str, ...]) -> None:
    base, _, step = item.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        raise ValueError(item)
    if base == "*":
        return
    bounds = base.split("-")
    if len(bounds) > 2:
        raise ValueError(item)
    values = [_cron_value(b, low, high, names) for b in bounds]
    if len(values) == 2 and values[0] > values[1]:
        raise ValueError(item)


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text in names:
        return names.index(text) + low
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(text)
    return int(text)


# -- load --------------------------------------------------------------------------------------------------------

def _default_packs_dir() -> Path | None:
    # CI and a developer checkout keep the official packs beside the repository; we never copy them in.
    candidate = Path(__file__).resolve().parent.parent.parent / "shared" / "semd-packs"
    return candidate if candidate.is_dir() else None


def _service_urls(env: _Reader, iemk_url: str | None) -> dict[str, str | None]:
    """Each service: its own variable, else IEMK_URL + the emulator's path, else None."""
    return {_field_of(variable): env.url(variable) or (_join(iemk_url, path) if iemk_url else None)
            for variable, path in SERVICE_PATHS.items()}


def _signing_pair(env: _Reader) -> tuple[Path | None, Path | None]:
    cert, key = env.path("IEMK_SIGN_CERT", kind="file"), env.path("IEMK_SIGN_KEY", kind="file")
    if (cert is None) != (key is None):
        missing, present = ("IEMK_SIGN_KEY", "IEMK_SIGN_CERT") if key is None else ("IEMK_SIGN_CERT", "IEMK_SIGN_KEY")
        raise SettingsError(missing, None, f"задаётся вместе с {present}")
    return cert, key


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of this process, checked; ``SettingsError`` names the first malformed variable."""
    env = _Reader(os.environ if environ is None else environ)
    home = (env.path("IEMK_HOME") or Path.cwd() / ".iemk").resolve()
    iemk_url = env.url("IEMK_URL")
    sign_cert, sign_key = _signing_pair(env)
    emulator_clients, emulator_client_certificates = _clients(env)
    return Settings(
        home=home,
        source_dsn=env.text("IEMK_SOURCE_DSN"),
        source_conn_id=env.text("IEMK_SOURCE_CONN_ID"),
        packs_dir=env.path("IEMK_SEMD_PACKS", kind="dir") or _default_packs_dir(),
        require_packs=env.boolean("IEMK_REQUIRE_PACKS", False),
        logical_control=env.boolean("IEMK_LOGICAL_CONTROL", True),
        iemk_url=iemk_url,
        **_service_urls(env, iemk_url),
        callback_url=env.url("IEMK_CALLBACK_URL"),
        client_entity_id=env.text("IEMK_CLIENT_ENTITY_ID"),
        sign_cert=sign_cert,
        sign_key=sign_key,
        keys_dir=env.path("IEMK_KEYS_DIR") or home / "keys",
        mo_config_path=env.path("IEMK_MO_CONFIG") or home / "mo.json",
        gost_backend=env.choice("IEMK_GOST_BACKEND", "auto", GOST_BACKENDS),
        cert_warn_days=env.integer("IEMK_CERT_WARN_DAYS", 30, minimum=0),
        http_timeout=env.number("IEMK_HTTP_TIMEOUT", 30.0),
        retry_ladder=env.checked("IEMK_RETRY_LADDER", _ladder, "ожидаются интервалы через запятую: число и единица "
                                 "s, m, h или d, например 1m,5m,30m,2h,6h,1d,2d,3d", _ladder(DEFAULT_RETRY_LADDER)),
        lost_answer_hours=env.checked("IEMK_LOST_ANSWER_HOURS", lambda raw: _at_least(float(raw), 0.0, strict=True),
                                      "ожидается положительное число (часы)", 6.0),
        reply_poke_seconds=env.number("IEMK_REPLY_POKE_SECONDS", 60.0),
        reply_timeout_seconds=env.number("IEMK_REPLY_TIMEOUT_SECONDS", 6 * 3600.0),
        task_retry_seconds=env.number("IEMK_TASK_RETRY_SECONDS", 30.0),
        audit_retention_days=env.integer("IEMK_AUDIT_RETENTION_DAYS", 90, minimum=1),
        schedule_cron=env.checked("IEMK_SCHEDULE_CRON", _cron, "ожидается cron из пяти полей или @daily и т. п.",
                                  "0 0 * * *"),
        timezone=env.checked("IEMK_TIMEZONE", _zone, "ожидается имя часового пояса IANA, например Europe/Moscow",
                             DEFAULT_TIMEZONE),
        start_date=env.checked("IEMK_START_DATE", _date, "ожидается дата ГГГГ-ММ-ДД", "2024-01-01"),
        repository_unique_id=env.pattern("IEMK_REPOSITORY_UNIQUE_ID", DEFAULT_REPOSITORY_UNIQUE_ID, _OID,
                                         "ожидается OID, например 1.2.643.5.1.13.2.7.100.1"),
        receiver_device_id=env.text("IEMK_RECEIVER_DEVICE_ID", DEFAULT_RECEIVER_DEVICE_ID) or "",
        processing_code=env.choice("IEMK_PROCESSING_CODE", DEFAULT_PROCESSING_CODE, PROCESSING_CODES, upper=True),
        mis_number=env.pattern("IEMK_MIS_NUMBER", DEFAULT_MIS_NUMBER, _MIS_NUMBER,
                               "ожидается 100.<номер МИС>.<номер экземпляра>, например 100.1.1"),
        emulator_dsn=env.text("IEMK_EMULATOR_DSN"),
        emulator_faults=env.checked("IEMK_EMULATOR_FAULTS", _faults, "ожидается JSON или путь к файлу JSON", None),
        emulator_clients=emulator_clients,
        emulator_client_certificates=emulator_client_certificates,
        emulator_mo=env.listed("IEMK_EMULATOR_MO"),
        emulator_reply_threads=env.integer("IEMK_EMULATOR_REPLY_THREADS", 4, minimum=1),
        dags_folder=env.path("IEMK_DAGS_FOLDER", kind="dir"),
        airflow_log_level=env.choice("IEMK_AIRFLOW_LOG_LEVEL", "ERROR", LOG_LEVELS, upper=True),
        p12_passwords=env.prefixed(P12_VARIABLE),
        quarantine_days=env.integer("IEMK_QUARANTINE_DAYS", 30, minimum=1),
        # IEMK_REQUIRE_SIGNED_REPLIES=yes, the older spelling, still means require.
        reply_signature=env.choice("IEMK_REPLY_SIGNATURE",
                                   "require" if env.boolean("IEMK_REQUIRE_SIGNED_REPLIES", False) else "off",
                                   REPLY_SIGNATURE_MODES),
        reply_certificates=_pins(env, "IEMK_REPLY_CERTIFICATES"),
        system_name=env.text("IEMK_SYSTEM_NAME", DEFAULT_SYSTEM_NAME) or DEFAULT_SYSTEM_NAME,
        pdq_action=env.checked("IEMK_PDQ_ACTION", _pdq_action, f"ожидается одно из: {', '.join(PDQ_ACTIONS)}",
                               PDQ_ACTIONS[0]),
        max_message_bytes=env.integer("IEMK_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES, minimum=MIN_MESSAGE_BYTES),
        xds_metadata_layout=env.choice("IEMK_XDS_METADATA_LAYOUT", XDS_LAYOUTS[0], XDS_LAYOUTS),
        installed_packs_dir=env.path("IEMK_PACKS_DIR") or home / "packs",
        fnsi_url=env.url("IEMK_FNSI_URL") or DEFAULT_FNSI_URL,
        fnsi_user_key=env.text("IEMK_FNSI_USER_KEY"),
        require_nsi=env.boolean("IEMK_REQUIRE_NSI", False),
        alert_channel=env.choice("IEMK_ALERT", "log", ALERT_CHANNELS),
        alert_smtp_conn_id=env.text("IEMK_ALERT_SMTP_CONN_ID", "smtp_default") or "smtp_default",
        alert_email_to=tuple(sorted(env.listed("IEMK_ALERT_EMAIL_TO") or ())),
        alert_webhook_url=env.url("IEMK_ALERT_WEBHOOK_URL"),
        alert_timeout=env.number("IEMK_ALERT_TIMEOUT", 10.0),
        export_deadline=env.checked("IEMK_EXPORT_DEADLINE", _deadline, "ожидается время ЧЧ:ММ или интервал, "
                                    "например 07:30, 8h или 90m", None),
        mo_sources=env.checked("IEMK_MO_SOURCES", _mo_sources,
                               f"ожидается список через запятую из: {', '.join(MO_SOURCES)}", ("variable", "file")),
        flk_processes=env.integer("IEMK_FLK_PROCESSES", 1, minimum=1),
        chunk_documents=env.integer("IEMK_CHUNK_DOCUMENTS", 200, minimum=1),
        chunk_bytes=env.integer("IEMK_CHUNK_BYTES", 64 * 1024 * 1024, minimum=1),
        api_pool_slots=env.integer("IEMK_API_POOL_SLOTS", 4, minimum=1),
        reply_wait=env.choice("IEMK_REPLY_WAIT", REPLY_WAIT_MODES[0], REPLY_WAIT_MODES),
        task_timeout_seconds=env.number("IEMK_TASK_TIMEOUT_SECONDS", 3 * 3600.0),
        task_max_retry_seconds=env.number("IEMK_TASK_MAX_RETRY_SECONDS", 1800.0),
        dagrun_timeout_seconds=env.number("IEMK_DAGRUN_TIMEOUT_SECONDS", 12 * 3600.0),
    )
