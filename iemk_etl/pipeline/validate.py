"""Validate: format control (ФЛК) of the documents not checked yet, before anything is sent."""

from __future__ import annotations

import hashlib
import logging

import psycopg

from iemk_etl.flk import validation
from iemk_etl.settings import Settings
from iemk_etl.store import ledger
from iemk_etl.store.ledger import State
from iemk_etl.store.mis import exchange

log = logging.getLogger(__name__)

_CHUNK = 200


def validate(conn: psycopg.Connection, ids: list[int], settings: Settings) -> list[int]:
    """Format control of the not-yet-checked documents; returns the ids that may go on."""
    checked = 0
    # In chunks, so a large backlog never holds every document's bytes in memory at once.
    for chunk in (ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)):
        queued = exchange.ledger_queued_content(conn, chunk)
        for doc in queued:
            _check_one(conn, doc.ledger_id, _findings(doc.kind_code, doc.cda, doc.content_hash, settings))
        checked += len(queued)
    passed = ledger.ids_in_states(conn, ids, (State.VALID, State.SENT))
    log.info("format control: %d checked now, %d of %d may go on", checked, len(passed), len(ids))
    return passed


def _check_one(conn: psycopg.Connection, ledger_id: int, findings: list[validation.Finding]) -> None:
    with conn.transaction():
        if findings:
            text = "; ".join(f.text() for f in findings[:3])
            ledger.set_state(conn, ledger_id, State.INVALID, error=text, error_code=findings[0].rule)
            log.info("ledger %s failed format control: %s", ledger_id, findings[0].rule)
        else:
            ledger.set_state(conn, ledger_id, State.VALID)


def _findings(kind_code: int, data: bytes, content_hash: str, settings: Settings) -> list[validation.Finding]:
    if hashlib.sha256(data).hexdigest() != content_hash:
        # The МИС changed the bytes after they were queued under this version: a new version is needed.
        return [validation.Finding("policy", "CONTENT_CHANGED",
                                   "содержимое документа изменилось после постановки в очередь без новой версии")]
    return validation.validate(kind_code, data, packs_dir=settings.packs_dir, require_packs=settings.require_packs,
                               logical=settings.logical_control)
