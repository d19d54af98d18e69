"""Extract: which documents an export run is responsible for, recorded in the ledger."""

from __future__ import annotations

import datetime as dt
import logging

import psycopg

from iemk_etl.semd.header import unique_id, version_uid
from iemk_etl.settings import DEFAULT_MIS_NUMBER
from iemk_etl.store import integration, ledger
from iemk_etl.store.mis import exchange
from iemk_etl.store.mis.exchange import OutboxDocument

log = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def integration_on(conn: psycopg.Connection, mo_oid: str) -> bool:
    enabled, total = integration.procedures_enabled(conn, mo_oid)
    log.info("integration %s for МО %s: %d/%d procedures enabled", integration.EXTERNAL_SYSTEM, mo_oid,
             enabled, total)
    return total > 0 and enabled == total


def _record_in_ledger(conn: psycopg.Connection, mo_oid: str, items: list[OutboxDocument], mis_number: str) -> None:
    ledger.record(conn, [
        ledger.NewEntry(mo_oid, unique_id(mo_oid, version_uid(d.local_uid, d.version), mis_number), d.version,
                        d.document_id,
                        d.kind_code, d.signed_at, d.content_hash)
        for d in items])


def extract(conn: psycopg.Connection, mo_oid: str, start: dt.datetime | None, end: dt.datetime | None, *,
            mis_number: str = DEFAULT_MIS_NUMBER) -> list[int]:
    """Ledger ids of the documents this run is responsible for.

    Those signed in [start, end), plus older ones that are not final yet (a transient failure or an
    answer still awaited). Documents signed in the period while the queue was not fed (integration
    switched on later, a historical backfill) are put into the outbox first, as procedure 1 would have.
    """
    start, end = start or _EPOCH, end or dt.datetime.now(dt.UTC)
    with conn.transaction():
        swept = exchange.sweep_signed_into_outbox(conn, mo_oid, start, end)
        _record_in_ledger(conn, mo_oid, exchange.outbox_documents_in_period(conn, mo_oid, start, end), mis_number)
        ids = ledger.ids_signed_in_or_open(conn, mo_oid, start, end)
    log.info("МО %s [%s, %s): %d documents in scope (%d swept into the outbox)", mo_oid, start, end, len(ids),
             swept)
    return ids


def extract_documents(conn: psycopg.Connection, mo_oid: str, document_ids: list[int], *,
                      mis_number: str = DEFAULT_MIS_NUMBER) -> list[int]:
    """Ledger ids for these МИС documents (the signed ones; others are not for export yet)."""
    with conn.transaction():
        exchange.sweep_documents_into_outbox(conn, mo_oid, document_ids)
        _record_in_ledger(conn, mo_oid, exchange.outbox_documents(conn, mo_oid, document_ids), mis_number)
        ids = ledger.ids_of_documents(conn, mo_oid, document_ids)
    log.info("МО %s: %d of %d documents in scope", mo_oid, len(ids), len(document_ids))
    return ids
