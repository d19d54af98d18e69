"""Reconcile: what ИЭМК holds for an МО and period against the ledger, and the repairs.

- registered here but absent there → re-queued (sent again in a new round, with a new MessageID), unless a later
  stored version replaced it (ИЭМК lists Approved and Deprecated entries; a registry that drops replaced versions
  must not make us resend them);
- present there but unknown here → reported;
- a status that disagrees (the ledger says not stored, ИЭМК holds the very document) → fixed, and said so.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd
import psycopg

from iemk_etl import errors, statuses
from iemk_etl.pipeline import queries
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.settings import Settings
from iemk_etl.store import ledger
from iemk_etl.store.ledger import State
from iemk_etl.store.mis import exchange
from iemk_etl.transport.client import IemkClient

log = logging.getLogger(__name__)

COLUMNS = ["unique_id", "finding", "ledger_state", "iemk_status", "action"]


@dataclass(frozen=True)
class Finding:
    unique_id: str
    finding: str          # missing_in_iemk | unknown_here | status_mismatch
    ledger_state: str | None
    iemk_status: str | None
    action: str


def reconcile(conn: psycopg.Connection, iemk: IemkClient, settings: Settings, mo_oid: str, start: dt.datetime,
              end: dt.datetime, *, repair: bool = True) -> pd.DataFrame:
    # Deprecated entries are held too: a version replaced by a later one (RPLC) is deprecated, not gone.
    query = xds_query.DocumentQuery(mo_oid=mo_oid, created_from=start, created_to=end,
                                    statuses=(xds_query.APPROVED, xds_query.DEPRECATED))
    there = {e.unique_id: e for e in queries.list_documents(iemk, settings, query)}
    here = {r.unique_id: r for r in exchange.ledger_documents_created(conn, mo_oid, start, end)}
    findings: list[Finding] = []
    for unique_id, row in here.items():
        ledger_id, state = row.ledger_id, row.state
        if state == State.STORED and unique_id not in there and not row.replaced:
            findings.append(Finding(unique_id, "missing_in_iemk", state, None,
                                    "re-queued: sent again next run" if repair else "none (report only)"))
            if repair:
                _requeue(conn, ledger_id)
        elif state != State.STORED and unique_id in there and state in (State.REJECTED, State.FAILED, State.SENT):
            findings.append(Finding(unique_id, "status_mismatch", state, there[unique_id].status.rsplit(":", 1)[-1],
                                    f"status set to «{statuses.STORED}»" if repair else "none (report only)"))
            if repair:
                with conn.transaction():
                    ledger.set_state(conn, ledger_id, State.STORED)
    for unique_id, entry in there.items():
        if unique_id not in here:
            findings.append(Finding(unique_id, "unknown_here", None, entry.status.rsplit(":", 1)[-1], "reported"))
    log.info("reconcile МО %s [%s, %s): %d in ИЭМК, %d in the ledger, %d findings", mo_oid, start, end, len(there),
             len(here), len(findings))
    return pd.DataFrame([f.__dict__ for f in findings], columns=COLUMNS)


def _requeue(conn: psycopg.Connection, ledger_id: int) -> None:
    with conn.transaction():
        ledger.send_again(conn, ledger_id, reason="не найден в ИЭМК при сверке: передаётся повторно",
                          code=errors.RECONCILE.code)
