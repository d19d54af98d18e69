"""Where a running task finds its database, its signing material and its ИЭМК client."""

from __future__ import annotations

import functools
import logging

from psycopg.conninfo import make_conninfo

from iemk_etl.settings import Settings
from iemk_etl.signing import keys
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import audit, db
from iemk_etl.transport import client

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


def _signer_from_connection(mo_code: str) -> keys.AnySigner | None:
    """Airflow connection ``iemk_sign__<mo code>``: extra {"cert": PEM, "key": PEM}, {"cert_path", "key_path"},
    or {"p12_path"} with the container's password in the connection's password field."""
    from airflow.sdk import Connection

    try:
        conn = Connection.get(f"iemk_sign__{mo_code}")
    except Exception:  # noqa: BLE001 - "not defined" differs between Airflow versions and secrets backends
        return None
    extra = conn.extra_dejson
    if extra.get("cert") and extra.get("key"):
        return keys.signer_from_pem(extra["cert"].encode(), extra["key"].encode())
    if extra.get("cert_path") and extra.get("key_path"):
        from pathlib import Path

        return keys.load_signer(Path(extra["cert_path"]), Path(extra["key_path"]))
    if extra.get("p12_path"):
        from pathlib import Path

        return keys.load_pkcs12(Path(extra["p12_path"]), conn.password)
    raise keys.KeyMaterialError(f"подключение iemk_sign__{mo_code} не содержит cert/key, cert_path/key_path "
                                "или p12_path")


def request_signer(settings: Settings, mo_code: str) -> keys.AnySigner:
    signer = _signer_from_connection(mo_code) or KeyStore(settings).request_signer(mo_code)
    info = keys.certificate_info(signer.certificate_der)
    message = "request signing certificate for %s: %s"
    if info.days_left() <= settings.cert_warn_days:
        log.warning(message, mo_code, info.describe(settings.cert_warn_days))
    else:
        log.info(message, mo_code, info.describe(settings.cert_warn_days))
    return signer


def iemk_client(settings: Settings, mo_code: str) -> client.IemkClient:
    """The МО's client; its request certificate from the Airflow connection when one is defined; every envelope
    archived (iemk.audit_exchange)."""
    return client.client_for_mo(settings, mo_code, request_signer=functools.partial(request_signer, settings),
                                observer=audit.Recorder(source_dsn(settings), mo_code))


# The Airflow pool of the tasks that call ИЭМК, across every МО's DAGs; `python -m iemk_airflow.setup` creates it
# with IEMK_API_POOL_SLOTS slots.
API_POOL = "iemk_api"
