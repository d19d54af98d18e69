"""«Передать документ в ИЭМК»: chosen documents now, through the same steps, ledger and rules as the nightly run."""

from __future__ import annotations

import time

from iemk_etl.pipeline import extract, patients, replies, send, validate
from iemk_etl.settings import Settings
from iemk_etl.store import db
from iemk_etl.transport import client


def deliver_now(dsn: str, mo_oid: str, document_ids: list[int], settings: Settings, iemk: client.IemkClient, *,
                wait_seconds: float = 30.0) -> dict[str, int]:
    """Extract, validate, feed patients and send these documents, wait up to ``wait_seconds`` for the answers,
    and write the statuses back; the counts of what happened."""
    with db.connect(dsn, autocommit=True) as conn:
        extracted = extract.extract_documents(conn, mo_oid, document_ids, mis_number=settings.mis_number)
        ids = validate.validate(conn, extracted, settings)
        patients.feed(conn, mo_oid, ids, settings, iemk)
    report = send.send(dsn, ids, settings, iemk)
    deadline = time.monotonic() + wait_seconds
    with db.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            answered, awaited = replies.replies_pending(conn, report.sent)
            if answered >= awaited:
                break
            time.sleep(0.2)
        return {**report.counts(), **replies.write_back(conn, mo_oid, ids,
                                                                quarantine_days=settings.quarantine_days)}
