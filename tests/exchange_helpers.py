"""Shared by the exchange tests: one ITI-41 submission of a test document, and the replies stored for it."""

from __future__ import annotations

import datetime as dt
import time

import psycopg

from iemk_etl.pipeline import replies
from iemk_etl.protocol import soap
from iemk_etl.protocol.xds import submit
from iemk_etl.protocol.xds.common import RegistryResponse, read_registry_response
from iemk_etl.semd.header import unique_id

from cda_factory import MO


def _submission(data: bytes, local_uid: str = "D-1") -> submit.Submission:
    return submit.Submission(
        unique_id=unique_id(MO.oid, local_uid), mo_oid=MO.oid, mo_name=MO.name, patient_local_id="P-1",
        kind_code=42, created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        author=submit.AuthorRef("11223344595", "Петрова", "Анна", "Сергеевна"), document=data,
        submission_set_id="1.2.3.4")


# Every reply the receiver took; one to a MessageID the ledger never sent waits in quarantine, not in the inbox.
REPLIES_TO = ("SELECT body FROM iemk.inbox WHERE relates_to = %(r)s"
              " UNION ALL SELECT body FROM iemk.reply_quarantine WHERE relates_to = %(r)s")


def _replies(dsn: str, relates_to: str, timeout: float = 10) -> list[RegistryResponse]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(REPLIES_TO, {"r": relates_to}).fetchall()
        if rows:
            return [read_registry_response(soap.parse(bytes(r[0])).body) for r in rows]
        time.sleep(0.05)
    raise AssertionError(f"no reply for {relates_to}")


def wait_answers(conn: psycopg.Connection, ids: list[int], timeout: float = 15) -> None:
    """Until every document of ``ids`` that waits for ИЭМК's answer has one (the pipeline's own count)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered, awaited = replies.replies_pending(conn, ids)
        if answered == awaited:
            return
        time.sleep(0.05)
    raise AssertionError("answers did not arrive")
