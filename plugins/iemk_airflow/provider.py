"""Provider information: registers the ``iemk`` connection type the provider way.

pyproject.toml's entry point ``apache_airflow_provider`` → ``provider = "iemk_airflow.provider:get_provider_info"``;
Airflow's ProvidersManager reads it in every component (the api-server's connection form, ``airflow connections
add --conn-type iemk``, ``airflow providers hooks``). The form is declared here as data (``conn-fields`` for the
extra, ``ui-field-behaviour`` for the standard fields), which Airflow 3's React UI renders without importing the
hook: the hook's ``get_connection_form_widgets`` / ``get_ui_field_behaviour`` are deprecated since Airflow 3.2
(and need wtforms), so the hook has neither.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from iemk_etl import settings as settings_mod

HOOK_CLASS = "iemk_airflow.hooks.IemkHook"
# Kept here, not in connection.py, so that reading the provider info (every Airflow component does, at start)
# imports no cryptography: only these names and iemk_etl.settings.
CONN_TYPE = "iemk"
DEFAULT_CONN_ID = "iemk_default"
DEFAULT_TIMEOUT = 30.0
# extra key → the setting it replaces (the variable's name, as the README lists it)
SERVICE_EXTRAS = {
    "repository_path": "IEMK_REPOSITORY_URL",
    "registry_path": "IEMK_REGISTRY_URL",
    "pix_path": "IEMK_PIX_URL",
    "pdq_path": "IEMK_PDQ_URL",
}


def _version() -> str:
    try:
        return metadata.version("iemk-etl")
    except metadata.PackageNotFoundError:   # a source checkout on sys.path, not installed
        return "0.0.0"


def ui_field_behaviour() -> dict[str, Any]:
    return {
        "hidden-fields": ["schema", "port"],
        "relabeling": {
            "host": "Базовый URL ИЭМК / IEMK base URL",
            "login": "clientEntityId",
            "password": "Пароль PKCS#12 / PKCS#12 password",
        },
        "placeholders": {
            "host": "https://ips.example.ru (эмулятор / emulator: http://127.0.0.1:8510)",
            "login": "идентификатор ИС из регистрации в ЕГИСЗ, например 17c74e63-dc38-438d-a27a-a1aa063ee7b8",
            "password": "только для p12_base64 / p12_path (only for a PKCS#12 container)",
            "callback_url": "https://mis.example.ru/iemk/callback",
            "cert": "-----BEGIN CERTIFICATE-----…",
            "private_key": "-----BEGIN PRIVATE KEY-----… (PKCS#8)",
            **{key: settings_mod.SERVICE_PATHS[variable] for key, variable in SERVICE_EXTRAS.items()},
        },
    }


def _text(label: str, description: str, *, default: str | None = None, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    if secret:
        schema["format"] = "password"    # masked in the form; the names also match Airflow's sensitive words
    return {"label": label, "description": description, "schema": schema}


def conn_fields() -> dict[str, Any]:
    paths = {
        key: _text(f"Путь сервиса {key.removesuffix('_path')} / {key.removesuffix('_path')} service path",
                   f"под базовым URL, или полный URL; по умолчанию {settings_mod.SERVICE_PATHS[variable]} "
                   f"(пути эмулятора) — заменяет {variable}",
                   default=settings_mod.SERVICE_PATHS[variable])
        for key, variable in SERVICE_EXTRAS.items()
    }
    return {
        **paths,
        "callback_url": _text("URL для ответов ИЭМК / callback URL",
                              "куда ИЭМК присылает асинхронные ответы (wsa:ReplyTo) — заменяет IEMK_CALLBACK_URL"),
        "timeout": {"label": "Таймаут, с / timeout, s",
                    "description": "каждого обращения к ИЭМК — заменяет IEMK_HTTP_TIMEOUT",
                    "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT}},
        "cert": _text("Сертификат ЭП запросов (PEM) / request certificate",
                      "подписывает каждый SOAP-запрос МО (WS-Security)"),
        "private_key": _text("Закрытый ключ (PEM, PKCS#8) / private key", "ключ к сертификату выше",
                             secret=True),
        "p12_base64": _text("Контейнер PKCS#12 (base64) / PKCS#12 container",
                            "вместо cert + private_key; пароль — в поле пароля", secret=True),
        "cert_path": _text("Файл сертификата на воркерах / certificate file",
                           "вместо cert: путь, одинаковый на всех воркерах"),
        "key_path": _text("Файл ключа на воркерах / key file", "вместе с cert_path"),
        "p12_path": _text("Файл PKCS#12 на воркерах / PKCS#12 file", "пароль — в поле пароля"),
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "iemk-etl",
        "name": "iemk-etl",
        "description": "Выгрузка подписанных СЭМД в ИЭМК (ЕГИСЗ): тип подключения iemk / the iemk connection type",
        "versions": [_version()],
        "connection-types": [{
            "hook-class-name": HOOK_CLASS,
            "hook-name": "ИЭМК (ЕГИСЗ)",
            "connection-type": CONN_TYPE,
            "ui-field-behaviour": ui_field_behaviour(),
            "conn-fields": conn_fields(),
        }],
    }
