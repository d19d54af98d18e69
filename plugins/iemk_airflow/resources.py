"""Where a running task finds its database, its signing material and its ИЭМК client."""

from __future__ import annotations

import functools
import logging
import re
from typing import TYPE_CHECKING

from psycopg.conninfo import make_conninfo

from iemk_airflow import connection, pools, provider
from iemk_etl.settings import Settings
from iemk_etl.signing import keys
from iemk_etl.signing.backend import get_backend
from iemk_etl.signing.keystore import KeyStore, Role, SignerLookup
from iemk_etl.store import audit, db
from iemk_etl.transport import client

if TYPE_CHECKING:
    from airflow.sdk import Connection

log = logging.getLogger(__name__)


def source_dsn(settings: Settings) -> str:
    """IEMK_SOURCE_CONN_ID names an Airflow connection; otherwise IEMK_SOURCE_DSN or the embedded server."""
    conn_id = settings.source_conn_id
    if not conn_id:
        return db.resolve_dsn(settings)
    from airflow.sdk import Connection

    c = Connection.get(conn_id)
    return dsn_from_parts(host=c.host, port=c.port, dbname=c.schema, user=c.login, password=c.password)


def dsn_from_parts(**parts: object) -> str:
    """A libpq conninfo from its parts, each quoted by libpq's rules (a password with spaces, quotes, backslashes,
    ``@`` or ``/`` stays one value); empty parts are left out, so libpq's defaults apply."""
    return make_conninfo(**{k: v for k, v in parts.items() if v not in (None, "")})  # type: ignore[arg-type]


# -- ИЭМК and signing material from Airflow connections (README: "The iemk connection") ---------------------------

_CONN_ID = re.compile(r"^[\w.-]+$")   # what Airflow accepts as a connection id


def _connection(conn_id: str) -> Connection | None:
    """The Airflow connection, or None when it is not defined (in the metadata database, a secrets backend or an
    AIRFLOW_CONN_ variable)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    if not _CONN_ID.match(conn_id):
        return None
    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def iemk_connection(mo_code: str) -> Connection | None:
    """The МО's ``iemk__<mo code>``, else ``iemk_default``, else None."""
    for conn_id in (connection.conn_id_for(mo_code), provider.DEFAULT_CONN_ID):
        if (found := _connection(conn_id)) is not None:
            return found
    return None


def mo_settings(settings: Settings, mo_code: str) -> Settings:
    """``settings`` with what the МО's ``iemk`` connection gives (base URL, service URLs, clientEntityId, callback
    URL, timeout): the connection wins over the environment, and the log says where each value comes from."""
    conn = iemk_connection(mo_code)
    if conn is None:
        log.info("МО %s: no Airflow connection %s or %s: ИЭМК settings from the environment (IEMK_URL=%r)", mo_code,
                 connection.conn_id_for(mo_code), provider.DEFAULT_CONN_ID, settings.iemk_url)
        return settings
    endpoint = connection.endpoint_from(conn.conn_id, host=conn.host, port=conn.port, login=conn.login,
                                        extra=conn.extra_dejson)
    applied, notes = connection.apply(settings, endpoint)
    if applied == settings:    # nothing to say: these settings hold it already (a task's second client, say)
        log.debug("МО %s: ИЭМК settings already from connection %s", mo_code, conn.conn_id)
        return settings
    if overriding := [note for overrides, note in notes if overrides]:
        log.warning("МО %s: %s", mo_code, "; ".join(overriding))
    log.info("МО %s: ИЭМК settings: %s", mo_code, "; ".join(note for overrides, note in notes if not overrides))
    return applied


def signer_lookup(settings: Settings) -> SignerLookup:
    """Signers from Airflow connections, for a KeyStore (most specific first; None: the key store's files).

    requests: ``iemk__<mo>`` (if it holds a certificate), ``iemk_sign__<mo>``, ``iemk_default`` (if it holds
    one); the МО's СЭМД signature: ``iemk_sign__<mo>__org``; an author's: ``iemk_sign__<mo>__staff__<local id>``.
    """
    backend = get_backend(settings.gost_backend)

    def lookup(role: Role, mo_code: str, staff_local_id: str | None) -> keys.AnySigner | None:
        if role == "request":
            candidates = [(connection.conn_id_for(mo_code), False), (connection.sign_conn_id(mo_code), True),
                          (provider.DEFAULT_CONN_ID, False)]
        else:
            candidates = [(connection.sign_conn_id(mo_code, role, staff_local_id), True)]
        for conn_id, must_hold in candidates:
            conn = _connection(conn_id)
            if conn is None:
                continue
            signer = connection.signer_from(conn_id, conn.extra_dejson, conn.password, backend=backend)
            if signer is not None:
                log.info("%s signature of МО %s%s: from Airflow connection %s", role, mo_code,
                         f" ({staff_local_id})" if staff_local_id else "", conn_id)
                return signer
            if must_hold:   # a signing connection is for its key: holding none is a mistake to name
                raise keys.KeyMaterialError(f"подключение {conn_id} не содержит cert/private_key, p12_base64, "
                                            "cert_path/key_path или p12_path")
        return None

    return lookup


def key_store(settings: Settings) -> KeyStore:
    """The key store of a task: Airflow connections first, then the files under IEMK_KEYS_DIR."""
    return KeyStore(settings, signer_lookup(settings))


def request_signer(settings: Settings, mo_code: str) -> keys.AnySigner:
    signer = key_store(settings).request_signer(mo_code)
    info = keys.certificate_info(signer.certificate_der)
    message = "request signing certificate for %s: %s"
    if info.days_left() <= settings.cert_warn_days:
        log.warning(message, mo_code, info.describe(settings.cert_warn_days))
    else:
        log.info(message, mo_code, info.describe(settings.cert_warn_days))
    return signer


def iemk_client(settings: Settings, mo_code: str) -> client.IemkClient:
    """The МО's client: ИЭМК's address and clientEntityId from its ``iemk`` connection when one is defined (else
    the environment), the request certificate from the connections when they hold one (else the files); every
    envelope archived (iemk.audit_exchange)."""
    cfg = mo_settings(settings, mo_code)
    return client.client_for_mo(cfg, mo_code, request_signer=functools.partial(request_signer, cfg),
                                observer=audit.Recorder(source_dsn(cfg), mo_code))


# The Airflow pool of the tasks that call ИЭМК (iemk_airflow.pools; `python -m iemk_airflow.setup` creates it).
API_POOL = pools.API_POOL
