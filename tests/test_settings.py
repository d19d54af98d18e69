"""Settings: the only door to the environment, checked at load, with errors that name the variable."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from iemk_etl import settings
from iemk_etl.settings import SettingsError

ROOT = Path(__file__).resolve().parents[1]


def _load(tmp_path: Path, **env: str) -> settings.Settings:
    """Settings from exactly these variables (nothing of the test process's environment leaks in)."""
    return settings.load({"IEMK_HOME": str(tmp_path / "home"), **env})


def test_defaults_load(tmp_path):
    cfg = _load(tmp_path)
    assert cfg.home == (tmp_path / "home").resolve()
    assert cfg.keys_dir == cfg.home / "keys" and cfg.mo_config_path == cfg.home / "mo.json"
    assert (cfg.require_packs, cfg.logical_control) == (False, True)
    assert (cfg.cert_warn_days, cfg.http_timeout, cfg.lost_answer_hours) == (30, 30.0, 6.0)
    assert [s.total_seconds() for s in cfg.retry_ladder] == [60, 300, 1800, 7200, 21600, 86400, 172800, 259200]
    assert (cfg.reply_poke_seconds, cfg.reply_timeout_seconds) == (60.0, 6 * 3600.0)
    assert (cfg.schedule_cron, cfg.timezone, cfg.start_date) == ("0 0 * * *", "Europe/Moscow", "2024-01-01")
    assert cfg.gost_backend == "auto" and cfg.airflow_log_level == "ERROR"
    # installation constants: documented defaults
    assert cfg.repository_unique_id == "1.2.643.5.1.13.2.7.100.1"
    assert cfg.processing_code == "P"
    assert cfg.receiver_device_id == "d5a0f9c0-5db4-11e3-949a-0800200c9a66"
    # no test defaults: nothing to send as, no dev-certificate fallback, nowhere to send
    assert cfg.client_entity_id is None
    assert cfg.sign_cert is None and cfg.sign_key is None
    assert None is cfg.iemk_url is cfg.repository_url is cfg.registry_url is cfg.pix_url is cfg.pdq_url
    assert cfg.emulator_clients is None and cfg.emulator_mo is None and cfg.p12_password("gkb7801") is None


def test_service_urls_are_resolved_at_load(tmp_path):
    cfg = _load(tmp_path, IEMK_URL="http://iemk.test:8080/", IEMK_PDQ_URL="https://ips.test/opaque/pdq-7")
    assert cfg.repository_url == "http://iemk.test:8080/xds/repository"
    assert cfg.registry_url == "http://iemk.test:8080/xds/registry"
    assert cfg.pix_url == "http://iemk.test:8080/pix"
    assert cfg.pdq_url == "https://ips.test/opaque/pdq-7"       # its own variable wins
    moved = cfg.with_iemk_url("http://127.0.0.1:5000")
    assert (moved.repository_url, moved.pdq_url) == ("http://127.0.0.1:5000/xds/repository",
                                                     "http://127.0.0.1:5000/pdq")


def test_values_are_parsed(tmp_path):
    faults = tmp_path / "faults.json"
    faults.write_text("{}")
    cfg = _load(tmp_path, IEMK_LOGICAL_CONTROL="off", IEMK_REQUIRE_PACKS="Yes", IEMK_HTTP_TIMEOUT="2.5",
                IEMK_GOST_BACKEND="Python", IEMK_PROCESSING_CODE="d", IEMK_SCHEDULE_CRON="*/15 6-22 * jan-mar mon,fri",
                IEMK_EMULATOR_CLIENTS="a, b,,", IEMK_EMULATOR_FAULTS=str(faults), IEMK_P12_PASSWORD="общий",
                IEMK_P12_PASSWORD__GKB7801="свой")
    assert (cfg.logical_control, cfg.require_packs, cfg.http_timeout) == (False, True, 2.5)
    assert (cfg.gost_backend, cfg.processing_code) == ("python", "D")
    assert cfg.emulator_clients == frozenset({"a", "b"})
    assert cfg.p12_password("gkb7801") == "свой" and cfg.p12_password("dgp2") == "общий"
    assert "свой" not in repr(cfg) and "общий" not in repr(cfg)


@pytest.mark.parametrize(("variable", "value"), [
    ("IEMK_LOGICAL_CONTROL", "maybe"),
    ("IEMK_REQUIRE_PACKS", "2"),
    ("IEMK_HTTP_TIMEOUT", "thirty"),
    ("IEMK_HTTP_TIMEOUT", "0"),
    ("IEMK_REPLY_POKE_SECONDS", "-1"),
    ("IEMK_AUDIT_RETENTION_DAYS", "0"),
    ("IEMK_RETRY_LADDER", "0m"),
    ("IEMK_RETRY_LADDER", "5 minutes"),
    ("IEMK_RETRY_LADDER", "1m,,2h"),
    ("IEMK_LOST_ANSWER_HOURS", "0"),
    ("IEMK_CERT_WARN_DAYS", "3.5"),
    ("IEMK_URL", "iemk.test/xds"),
    ("IEMK_CALLBACK_URL", "ftp://host/cb"),
    ("IEMK_REPOSITORY_URL", "http://:80/x"),
    ("IEMK_PIX_URL", "http://host:port/pix"),
    ("IEMK_TIMEZONE", "Europe/Mosсow"),        # a Cyrillic «с»
    ("IEMK_TIMEZONE", "/etc/localtime"),
    ("IEMK_SCHEDULE_CRON", "0 0 * *"),
    ("IEMK_SCHEDULE_CRON", "0 24 * * *"),
    ("IEMK_SCHEDULE_CRON", "*/0 * * * *"),
    ("IEMK_START_DATE", "2024-13-01"),
    ("IEMK_SEMD_PACKS", "/nonexistent/packs"),
    ("IEMK_DAGS_FOLDER", "/nonexistent/dags"),
    ("IEMK_SIGN_CERT", "/nonexistent/cert.pem"),
    ("IEMK_GOST_BACKEND", "fast"),
    ("IEMK_PROCESSING_CODE", "X"),
    ("IEMK_REPOSITORY_UNIQUE_ID", "not-an-oid"),
    ("IEMK_AIRFLOW_LOG_LEVEL", "LOUD"),
    ("IEMK_EMULATOR_FAULTS", "/nonexistent/faults.json"),
    ("IEMK_ALERT", "pager"),
    ("IEMK_ALERT_WEBHOOK_URL", "ftp://hooks.example"),
    ("IEMK_ALERT_TIMEOUT", "0"),
    ("IEMK_EXPORT_DEADLINE", "7:5"),
    ("IEMK_EXPORT_DEADLINE", "25:00"),
    ("IEMK_EXPORT_DEADLINE", "1h,2h"),
])
def test_a_malformed_setting_fails_at_load_naming_the_variable(tmp_path, variable, value):
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, **{variable: value})
    assert caught.value.variable == variable
    assert variable in str(caught.value) and repr(value) in str(caught.value)


def test_the_retry_ladder_reads_seconds_to_days(tmp_path):
    cfg = _load(tmp_path, IEMK_RETRY_LADDER="30s, 1.5m,2H,1d", IEMK_LOST_ANSWER_HOURS="0.5")
    assert [s.total_seconds() for s in cfg.retry_ladder] == [30, 90, 7200, 86400]
    assert cfg.lost_answer_hours == 0.5


def test_sign_cert_and_key_come_together(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(SettingsError, match="IEMK_SIGN_KEY"):
        _load(tmp_path, IEMK_SIGN_CERT=str(cert))


def test_the_process_environment_is_read(monkeypatch):
    monkeypatch.setenv("IEMK_RETRY_LADDER", "many")
    with pytest.raises(SettingsError, match="IEMK_RETRY_LADDER='many'"):
        settings.load()


def test_client_entity_id_is_required_to_send(tmp_path):
    from iemk_etl.transport import client

    cfg = _load(tmp_path, IEMK_URL="http://127.0.0.1:9")
    with pytest.raises(SettingsError, match="IEMK_CLIENT_ENTITY_ID"):
        cfg.require_client_entity_id()
    with pytest.raises(SettingsError, match="IEMK_CLIENT_ENTITY_ID"):
        client.client_for_mo(cfg, "gkb7801")
    assert _load(tmp_path, IEMK_CLIENT_ENTITY_ID="abc").require_client_entity_id() == "abc"


def test_no_module_reads_the_environment_but_settings():
    """settings.py is the only door: no os.environ / os.getenv elsewhere in iemk_etl (the dev tools aside)."""
    allowed = {ROOT / "iemk_etl" / "settings.py"}
    pattern = re.compile(r"\bos\.(environ|getenv)\b|\bfrom os import\b.*\b(environ|getenv)\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "iemk_etl").rglob("*.py"))
        if path not in allowed and "devtools" not in path.parts
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_alert_settings_are_read(tmp_path):
    cfg = _load(tmp_path, IEMK_ALERT="EMAIL", IEMK_ALERT_EMAIL_TO="b@x.test, a@x.test", IEMK_EXPORT_DEADLINE="07:30",
                IEMK_ALERT_SMTP_CONN_ID="mail")
    assert (cfg.alert_channel, cfg.alert_smtp_conn_id) == ("email", "mail")
    assert cfg.alert_email_to == ("a@x.test", "b@x.test")
    assert settings.deadline_clock(cfg.export_deadline) == dt.time(7, 30)
    assert settings.deadline_interval(_load(tmp_path, IEMK_EXPORT_DEADLINE="90m").export_deadline) == \
        dt.timedelta(minutes=90)
    assert _load(tmp_path).alert_channel == "log" and _load(tmp_path).export_deadline is None
