"""The ``iemk`` connection type: registered through the provider entry point (the real ``airflow`` CLI sees it),
its Test button against the running emulator, and the clear refusals (wrong URL, wrong path, expired certificate,
a key of another certificate); the connection's settings win over the environment and say so in the log."""

import datetime as dt
import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from iemk_airflow import resources
from iemk_airflow.hooks import IemkHook
from iemk_etl import settings
from iemk_etl.devtools import certs
from iemk_etl.emulator.server import EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig

ENTITY = "17c74e63-dc38-438d-a27a-a1aa063ee7b8"


def _airflow(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}
    airflow = Path(sys.executable).with_name("airflow")
    return subprocess.run([str(airflow), *args], env=env, capture_output=True, text=True, timeout=180)


def test_airflow_cli_adds_an_iemk_connection_and_lists_the_type(tmp_path):
    home = tmp_path / "airflow-home"
    assert _airflow(home, "db", "migrate").returncode == 0
    extra = {"callback_url": "http://127.0.0.1:8511/callback", "pix_path": "/pix"}
    added = _airflow(home, "connections", "add", "iemk__gkb7801", "--conn-type", "iemk",
                     "--conn-host", "http://127.0.0.1:8510", "--conn-login", ENTITY,
                     "--conn-extra", json.dumps(extra))
    assert added.returncode == 0, added.stderr
    with sqlite3.connect(home / "airflow.db") as db:     # what the CLI stored (one CLI start less than `get`)
        stored = db.execute("SELECT conn_type, host, login, extra FROM connection WHERE conn_id = 'iemk__gkb7801'"
                            ).fetchone()
    assert stored[:3] == ("iemk", "http://127.0.0.1:8510", ENTITY) and stored[3]    # the extra: Fernet-encrypted
    hooks = _airflow(home, "providers", "hooks", "-o", "json")
    listed = {h["connection_type"]: h for h in json.loads(hooks.stdout)}
    assert listed["iemk"]["class"] == "iemk_airflow.hooks.IemkHook"


def test_the_ui_connection_form_gets_the_type_with_labels_placeholders_and_secret_fields():
    # What the api-server's /ui/connections/hook_meta serves the React form.
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    [meta] = [m.model_dump() for m in HookMetaService.hook_meta_data() if m.connection_type == "iemk"]
    assert meta["hook_name"] == "ИЭМК (ЕГИСЗ)"
    assert meta["standard_fields"]["host"]["title"] == "Базовый URL ИЭМК / IEMK base URL"
    assert meta["standard_fields"]["login"]["title"] == "clientEntityId"
    assert meta["standard_fields"]["port"]["hidden"] is True
    extra = meta["extra_fields"]
    assert {"repository_path", "pix_path", "callback_url", "cert", "private_key", "p12_base64"} <= set(extra)
    assert extra["repository_path"]["value"] == "/xds/repository"
    assert extra["private_key"]["schema"]["format"] == extra["p12_base64"]["schema"]["format"] == "password"


@pytest.fixture
def emulator(fresh_dsn):
    with EmulatorServer(EmulatorConfig(reply_delay=0.05), fresh_dsn) as server:
        yield server


@pytest.fixture
def define(monkeypatch):
    """Define an Airflow connection the way a secrets backend does (AIRFLOW_CONN_<ID> JSON)."""
    def put(conn_id: str, **fields):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "iemk", **fields}))
        return conn_id
    return put


def _pem(cert: Path, key: Path) -> dict[str, str]:
    return {"cert": cert.read_text(), "private_key": key.read_text()}


def test_the_test_button_passes_against_the_emulator(emulator, define, dev_keys):
    conn_id = define("iemk__gkb7801", host=emulator.url, login=ENTITY, extra=_pem(*dev_keys))
    ok, message = IemkHook(conn_id).test_connection()
    assert ok, message
    assert "repository, registry, pix, pdq" in message and "сертификат ЭП запросов" in message


def test_a_wrong_url_fails_with_a_clear_message(define):
    with socket.socket() as s:     # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok, message = IemkHook(define("iemk_default", host=f"http://127.0.0.1:{port}")).test_connection()
    assert not ok
    assert message.startswith(f"ИЭМК недоступна по адресу http://127.0.0.1:{port}/xds/repository?wsdl")


def test_a_wrong_service_path_fails_naming_it(emulator, define):
    conn_id = define("iemk_default", host=emulator.url, extra={"pix_path": "/no-such-service"})
    ok, message = IemkHook(conn_id).test_connection()
    assert not ok
    assert "HTTP 404" in message and "/no-such-service?wsdl" in message and "pix" in message


def test_an_expired_certificate_fails_with_a_clear_message(emulator, define, tmp_path):
    expired = certs.create_dev_certificate(tmp_path, days=1, prefix="expired",
                                           not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10))
    ok, message = IemkHook(define("iemk_default", host=emulator.url, extra=_pem(*expired))).test_connection()
    assert not ok
    assert "подключение iemk_default: срок действия сертификата ЭП истёк" in message


def test_a_key_of_another_certificate_fails_with_a_clear_message(emulator, define, dev_keys, tmp_path):
    _, other_key = certs.create_dev_certificate(tmp_path, prefix="other")
    extra = _pem(dev_keys[0], other_key)
    ok, message = IemkHook(define("iemk_default", host=emulator.url, extra=extra)).test_connection()
    assert not ok
    assert "закрытый ключ не соответствует сертификату ЭП" in message


def test_the_mo_connection_wins_over_the_default_and_the_environment_and_says_so(define, caplog):
    define("iemk_default", host="http://default.example:1", login="default-entity")
    define("iemk__gkb7801", host="https://iemk.example", login=ENTITY,
           extra={"repository_path": "/opaque/rep", "callback_url": "https://mis.example/cb", "timeout": 7})
    env = settings.load({"IEMK_URL": "http://127.0.0.1:8510", "IEMK_CLIENT_ENTITY_ID": "env-entity"})
    with caplog.at_level(logging.INFO, logger="iemk_airflow.resources"):
        mine = resources.mo_settings(env, "gkb7801")
        other = resources.mo_settings(env, "orb5012")
    assert (mine.repository_url, mine.pix_url, mine.callback_url, mine.client_entity_id, mine.http_timeout) == \
        ("https://iemk.example/opaque/rep", "https://iemk.example/pix", "https://mis.example/cb", ENTITY, 7.0)
    assert (other.iemk_url, other.client_entity_id) == ("http://default.example:1", "default-entity")
    overrides = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="iemk_airflow.resources"):
        assert resources.mo_settings(mine, "gkb7801") is mine        # a task's second client: said once only
    assert not caplog.records
    assert any("IEMK_URL: connection iemk__gkb7801 ('https://iemk.example') overrides the environment "
               "('http://127.0.0.1:8510')" in m for m in overrides), overrides
    assert any("IEMK_CLIENT_ENTITY_ID: connection iemk_default" in m for m in overrides), overrides


def test_without_a_connection_the_environment_stands_and_the_log_says_so(caplog):
    env = settings.load({"IEMK_URL": "http://127.0.0.1:8510"})
    with caplog.at_level(logging.INFO, logger="iemk_airflow.resources"):
        assert resources.mo_settings(env, "gkb7801") is env
    assert "no Airflow connection iemk__gkb7801 or iemk_default" in caplog.text


def test_a_tasks_client_talks_to_the_connections_iemk_with_its_identity_and_certificate(
        define, dev_keys, fresh_dsn, tmp_path):
    """No IEMK_URL, no IEMK_CLIENT_ENTITY_ID, no key file: everything from iemk__gkb7801. The emulator requires a
    valid signature and knows only ENTITY, so its acceptance proves both came from the connection."""
    from iemk_etl.transport import client

    from cda_factory import document
    from exchange_helpers import _submission

    config = EmulatorConfig(reply_delay=0.05, known_clients=frozenset({ENTITY}))
    with EmulatorServer(config, fresh_dsn) as emulator:
        define("iemk__gkb7801", host=emulator.url, login=ENTITY, extra=_pem(*dev_keys))
        env = settings.load({"IEMK_HOME": str(tmp_path), "IEMK_SOURCE_DSN": fresh_dsn})
        assert (env.iemk_url, env.client_entity_id) == (None, None)
        with resources.iemk_client(env, "gkb7801") as iemk:
            assert iemk.repository_url == f"{emulator.url}/xds/repository"
            result = iemk.provide_and_register(_submission(document()), message_id="urn:uuid:conn-1",
                                               reply_to="http://127.0.0.1:9/callback")
        define("iemk__gkb7801", host=emulator.url, login="someone-else", extra=_pem(*dev_keys))
        with resources.iemk_client(env, "gkb7801") as iemk:
            refused = iemk.provide_and_register(_submission(document(), "D-2"), message_id="urn:uuid:conn-2",
                                                reply_to="http://127.0.0.1:9/callback")
    assert result.verdict is client.Verdict.ACCEPTED, result.error
    assert refused.verdict is not client.Verdict.ACCEPTED and "UnknownClient" in refused.error, refused
