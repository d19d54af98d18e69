"""The ``iemk`` Airflow connection and the signing connections: what each field means, read into what the domain
takes (``Settings`` and signers). Pure functions over the connection's fields, no Airflow import: the hook and the
task glue (``resources``) fetch the connection, this module reads it.

``iemk`` connection (one per МО, ``iemk__<mo code>``; ``iemk_default`` for every МО without its own):

* host: the ИЭМК base URL (``https://…``; without a scheme ``https://`` is assumed, the port field is appended);
* login: clientEntityId (``transportHeader/authInfo/clientEntityId``, the system registered in ЕГИСЗ);
* password: the PKCS#12 container's password (when the request certificate comes as PKCS#12);
* extra: ``repository_path``, ``registry_path``, ``pix_path``, ``pdq_path`` (each service's path under the base
  URL, or a full URL; default the emulator's paths), ``callback_url``, ``timeout`` (seconds), and the request
  certificate: ``cert`` + ``private_key`` (PEM; PKCS#8 key), or ``p12_base64`` (PKCS#12, base64), or files on
  the workers ``cert_path`` + ``key_path`` / ``p12_path``.

Signing connections (generic type, or any): ``iemk_sign__<mo code>`` (the request certificate, as before),
``iemk_sign__<mo code>__org`` (the МО's СЭМД signature), ``iemk_sign__<mo code>__staff__<local id>`` (an
author's), each with the same key fields (``key`` is accepted for ``private_key``, as ``iemk_sign__`` always had).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from iemk_airflow.provider import CONN_TYPE, DEFAULT_TIMEOUT, SERVICE_EXTRAS
from iemk_etl import settings as settings_mod
from iemk_etl.errors import ConfigurationError
from iemk_etl.settings import Settings
from iemk_etl.signing import keys

SIGN_PREFIX = "iemk_sign__"


def conn_id_for(mo_code: str) -> str:
    """The МО's own ``iemk`` connection."""
    return f"{CONN_TYPE}__{mo_code}"


def sign_conn_id(mo_code: str, role: str = "request", staff_local_id: str | None = None) -> str:
    """``iemk_sign__<mo>`` (requests), ``iemk_sign__<mo>__org``, ``iemk_sign__<mo>__staff__<local id>``."""
    base = f"{SIGN_PREFIX}{mo_code}"
    if role == "request":
        return base
    if role == "org":
        return f"{base}__org"
    return f"{base}__staff__{staff_local_id}"


@dataclass(frozen=True)
class IemkEndpoint:
    """What an ``iemk`` connection says; None where it says nothing (the environment's value then stands)."""

    conn_id: str
    base_url: str | None
    services: Mapping[str, str]          # setting variable (IEMK_PIX_URL, …) → URL
    client_entity_id: str | None
    callback_url: str | None
    timeout: float | None


class ConnectionFieldError(ConfigurationError, ValueError):
    """A connection field that cannot be used (a URL, a number); names the connection and the field, in Russian."""


def base_url(host: str | None, port: int | None) -> str | None:
    if not host:
        return None
    host = host.strip().rstrip("/")
    if "://" in host:
        return host
    return f"https://{host}:{port}" if port else f"https://{host}"


def _join(base: str | None, path: str) -> str | None:
    if "://" in path:
        return path
    if base is None:
        return None
    return f"{base}/{path.lstrip('/')}"


def endpoint_from(conn_id: str, *, host: str | None, port: int | None = None, login: str | None = None,
                  extra: Mapping[str, Any] | None = None) -> IemkEndpoint:
    """Read an ``iemk`` connection's fields; a malformed value is refused naming the field."""
    extra = extra or {}
    url = base_url(host, port)
    services: dict[str, str] = {}
    for key, variable in SERVICE_EXTRAS.items():
        path = str(extra.get(key) or settings_mod.SERVICE_PATHS[variable])
        joined = _join(url, path)
        if joined is not None:
            services[variable] = _checked_url(conn_id, key, joined)
    callback = str(extra["callback_url"]).strip() if extra.get("callback_url") else None
    return IemkEndpoint(conn_id, _checked_url(conn_id, "host", url) if url else None, services,
                        (login or "").strip() or None,
                        _checked_url(conn_id, "callback_url", callback) if callback else None,
                        _timeout(conn_id, extra.get("timeout")))


def _checked_url(conn_id: str, field: str, value: str) -> str:
    """The rule the environment's URLs follow (settings): http(s), a host, a well-formed port."""
    try:
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            parts.port  # noqa: B018 - raises ValueError on a malformed port
            return value
    except ValueError:
        pass
    raise ConnectionFieldError(f"подключение {conn_id}, поле {field}={value!r}: ожидался URL вида "
                               "https://хост[:порт]/путь")


def _timeout(conn_id: str, raw: object) -> float | None:
    if raw in (None, ""):
        return None
    try:
        value = float(str(raw))
    except ValueError:
        value = 0.0
    if not math.isfinite(value) or value <= 0:
        raise ConnectionFieldError(f"подключение {conn_id}, поле timeout={raw!r}: ожидалось число секунд больше 0")
    return value


# -- what overrides what: the connection over the environment, every replaced value said ------------------------

_FIELDS = {  # setting variable → Settings field
    "IEMK_URL": "iemk_url", **{v: v.removeprefix("IEMK_").lower() for v in SERVICE_EXTRAS.values()},
    "IEMK_CALLBACK_URL": "callback_url", "IEMK_CLIENT_ENTITY_ID": "client_entity_id",
    "IEMK_HTTP_TIMEOUT": "http_timeout",
}


def apply(settings: Settings, endpoint: IemkEndpoint) -> tuple[Settings, list[tuple[bool, str]]]:
    """``settings`` with what the connection gives; and one line per setting saying where its value comes from
    (the connection, replacing a different environment value, or the environment because the connection is
    silent), flagged True when the connection replaces a different value the environment set. Secrets never
    appear: none of these values is one."""
    given: dict[str, object] = {"IEMK_URL": endpoint.base_url, **endpoint.services,
                                "IEMK_CALLBACK_URL": endpoint.callback_url,
                                "IEMK_CLIENT_ENTITY_ID": endpoint.client_entity_id,
                                "IEMK_HTTP_TIMEOUT": endpoint.timeout}
    changes: dict[str, object] = {}
    notes: list[tuple[bool, str]] = []
    for variable, value in given.items():
        field = _FIELDS[variable]
        current = getattr(settings, field)
        if value is None:
            notes.append((False, f"{variable}: from the environment ({current!r}); connection {endpoint.conn_id} "
                                 "does not set it"))
            continue
        changes[field] = value
        if current not in (None, value) and not (variable == "IEMK_HTTP_TIMEOUT" and current == DEFAULT_TIMEOUT):
            notes.append((True, f"{variable}: connection {endpoint.conn_id} ({value!r}) overrides the environment "
                                f"({current!r})"))
        else:
            notes.append((False, f"{variable}: connection {endpoint.conn_id} ({value!r})"))
    return dataclasses.replace(settings, **changes), notes  # type: ignore[arg-type]


# -- key material in a connection -------------------------------------------------------------------------------

def signer_from(conn_id: str, extra: Mapping[str, Any], password: str | None, *,
                backend: keys.GostBackend | None = None) -> keys.AnySigner | None:
    """The checked signer a connection holds; None when it holds no key material. Refusals name the connection."""
    try:
        return _signer(extra, password, backend)
    except keys.KeyMaterialError as exc:
        raise keys.KeyMaterialError(f"подключение {conn_id}: {exc}") from None


def _signer(extra: Mapping[str, Any], password: str | None,
            backend: keys.GostBackend | None) -> keys.AnySigner | None:
    key = extra.get("private_key") or extra.get("key")
    if extra.get("cert"):
        if not key:
            raise keys.KeyMaterialError("есть cert, но нет private_key (закрытый ключ, PEM)")
        return keys.signer_from_pem(_text(extra["cert"]).encode(), _text(key).encode(), backend=backend)
    if extra.get("p12_base64"):
        try:
            data = base64.b64decode(_text(extra["p12_base64"]), validate=False)
        except binascii.Error:
            raise keys.KeyMaterialError("p12_base64 не читается как base64") from None
        return keys.pkcs12_signer(data, password or extra.get("p12_password"), backend=backend)
    if extra.get("cert_path"):
        if not extra.get("key_path"):
            raise keys.KeyMaterialError("есть cert_path, но нет key_path")
        return keys.load_signer(Path(extra["cert_path"]), Path(extra["key_path"]), backend=backend)
    if extra.get("p12_path"):
        return keys.load_pkcs12(Path(extra["p12_path"]), password or extra.get("p12_password"), backend=backend)
    return None


def _text(value: object) -> str:
    # A PEM pasted into a one-line form field or an env URI may carry literal "\n".
    return str(value).replace("\\n", "\n").strip() + "\n"
