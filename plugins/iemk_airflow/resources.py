"""Where a running task finds its database and its ИЭМК client."""

from __future__ import annotations

import os

from iemk_etl import client, db, keys
from iemk_etl.settings import Settings


def source_dsn(settings: Settings) -> str:
    """IEMK_SOURCE_CONN_ID names an Airflow connection; otherwise IEMK_SOURCE_DSN or the embedded server."""
    conn_id = os.environ.get("IEMK_SOURCE_CONN_ID")
    if not conn_id:
        return db.resolve_dsn(settings)
    from airflow.sdk import Connection

    c = Connection.get(conn_id)
    parts = {"host": c.host, "port": c.port, "dbname": c.schema, "user": c.login, "password": c.password}
    return " ".join(f"{k}={v}" for k, v in parts.items() if v not in (None, ""))


def iemk_client(settings: Settings) -> client.IemkClient:
    if not settings.repository_url:
        raise ValueError("IEMK_URL (or IEMK_REPOSITORY_URL) is not set: nowhere to send documents")
    signer = keys.load_signer(settings.sign_cert, settings.sign_key)
    return client.IemkClient(settings.repository_url, client_entity_id=settings.client_entity_id, signer=signer,
                             timeout=settings.http_timeout)
