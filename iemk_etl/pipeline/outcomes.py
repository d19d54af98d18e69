"""One log line per document that is refused, held or has failed: what the people reading task logs act on.

The line names the ledger id, the document's uniqueId and version, the error code (``iemk_etl.errors``), its
Russian title, who must act (``errors.Actor``) and when it may go again — and nothing else: no patient's name,
no СНИЛС, no document content, not even the particular text of the error (it may quote the document; the МИС
status and ``iemk-etl report`` show it to the people allowed to read it).
"""

from __future__ import annotations

import logging

import psycopg

from iemk_etl import errors
from iemk_etl.store import ledger

log = logging.getLogger(__name__)


def log_refusal(conn: psycopg.Connection, ledger_id: int, code: str | None, step: str) -> None:
    """Log that ``step`` refused (or ended, or held) the document of ``ledger_id`` with error ``code``."""
    kind = errors.kind(code or errors.IEMK_UNKNOWN.code)
    who = ledger.identity(conn, ledger_id)
    mo_oid, unique_id, version = who if who else ("?", "?", 0)
    log.warning("document not accepted: step=%s ledger_id=%s uniqueId=%s version=%s mo=%s code=%s actor=%s "
                "retry=%s — %s", step, ledger_id, unique_id, version, mo_oid, kind.code, kind.actor.value,
                kind.retry.value, kind.title)
