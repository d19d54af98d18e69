"""Settings of iemk-etl, read from environment variables.

Everything a task or a command needs is resolved here, once, so that the Airflow glue, the CLI and the
tests agree on names and defaults. Nothing here touches a database or the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

EXTERNAL_SYSTEM = "fed_iemk"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    return float(raw) if raw is not None else default


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    return int(raw) if raw is not None else default


def _env_bool(name: str, default: bool = False) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _default_packs_dir() -> Path | None:
    # CI and a developer checkout keep the official packs beside the repository; we never copy them in.
    candidate = Path(__file__).resolve().parent.parent.parent / "shared" / "semd-packs"
    return candidate if candidate.is_dir() else None


@dataclass(frozen=True)
class Settings:
    home: Path
    source_dsn: str | None
    packs_dir: Path | None
    require_packs: bool
    logical_control: bool
    iemk_url: str | None
    callback_url: str | None
    client_entity_id: str
    sign_cert: Path
    sign_key: Path
    keys_dir: Path
    cert_warn_days: int
    http_timeout: float
    max_send_attempts: int
    reply_poke_seconds: float
    reply_timeout_seconds: float
    schedule_cron: str
    timezone: str
    start_date: str

    def _service_url(self, variable: str, path: str) -> str | None:
        # The ИПС publishes each service under an opaque path, so each may be set on its own.
        explicit = _env(variable)
        if explicit:
            return explicit
        return f"{self.iemk_url.rstrip('/')}{path}" if self.iemk_url else None

    @property
    def repository_url(self) -> str | None:
        """ITI-41 and ITI-43: IEMK_REPOSITORY_URL, else IEMK_URL + /xds/repository (the emulator's path)."""
        return self._service_url("IEMK_REPOSITORY_URL", "/xds/repository")

    @property
    def registry_url(self) -> str | None:
        return self._service_url("IEMK_REGISTRY_URL", "/xds/registry")

    @property
    def pix_url(self) -> str | None:
        return self._service_url("IEMK_PIX_URL", "/pix")

    @property
    def pdq_url(self) -> str | None:
        return self._service_url("IEMK_PDQ_URL", "/pdq")

    @property
    def mo_config_path(self) -> Path:
        return Path(_env("IEMK_MO_CONFIG") or self.home / "mo.json")


def load() -> Settings:
    home = Path(_env("IEMK_HOME") or Path.cwd() / ".iemk").resolve()
    packs = _env("IEMK_SEMD_PACKS")
    return Settings(
        home=home,
        source_dsn=_env("IEMK_SOURCE_DSN"),
        packs_dir=Path(packs).resolve() if packs else _default_packs_dir(),
        require_packs=_env_bool("IEMK_REQUIRE_PACKS"),
        logical_control=_env_bool("IEMK_LOGICAL_CONTROL", True),
        iemk_url=_env("IEMK_URL"),
        callback_url=_env("IEMK_CALLBACK_URL"),
        client_entity_id=_env("IEMK_CLIENT_ENTITY_ID", "17c74e63-dc38-438d-a27a-a1aa063ee7b8") or "",
        sign_cert=Path(_env("IEMK_SIGN_CERT") or home / "certs" / "client-cert.pem"),
        sign_key=Path(_env("IEMK_SIGN_KEY") or home / "certs" / "client-key.pem"),
        keys_dir=Path(_env("IEMK_KEYS_DIR") or home / "keys"),
        cert_warn_days=_env_int("IEMK_CERT_WARN_DAYS", 30),
        http_timeout=_env_float("IEMK_HTTP_TIMEOUT", 30.0),
        max_send_attempts=_env_int("IEMK_MAX_SEND_ATTEMPTS", 5),
        reply_poke_seconds=_env_float("IEMK_REPLY_POKE_SECONDS", 60.0),
        reply_timeout_seconds=_env_float("IEMK_REPLY_TIMEOUT_SECONDS", 6 * 3600.0),
        schedule_cron=_env("IEMK_SCHEDULE_CRON", "0 0 * * *") or "0 0 * * *",
        timezone=_env("IEMK_TIMEZONE", "Europe/Moscow") or "Europe/Moscow",
        start_date=_env("IEMK_START_DATE", "2024-01-01") or "2024-01-01",
    )
