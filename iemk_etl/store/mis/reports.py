"""Reads for the reports: МИС documents of a period with their ledger rows, counted in the database.

A period is of documents *created* in [start, end) (``mis.semd_document.created_at``, indexed with the МО; either side
may be open, None): every document has that instant, unsigned ones included, so one period holds every status. A day
is the local day of ``created_at`` in the time zone given. Counting is done here, not in pandas: a report over a year
of a large МО moves a few hundred groups, never the documents themselves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from iemk_etl import statuses

# The status without its reason (statuses.family, in SQL): «Ошибка: …» → «Ошибка». The words come as parameters.
_FAMILY = "CASE WHEN starts_with(d.status, %(error_prefix)s) THEN %(error)s ELSE d.status END"
# The reason's first part (the error's title, when the text was made by ErrorKind.status_text): the class of an
# error the ledger has no code for (forming and signing fail before a document reaches the ledger).
_TITLE = "CASE WHEN l.error_code IS NULL THEN split_part(substr(d.status, %(prefix_len)s), ': ', 1) END"
_PERIOD = (" FROM mis.semd_document d JOIN mis.mo m ON m.oid = d.mo_oid"
           " LEFT JOIN iemk.ledger l ON l.document_id = d.id AND l.version = d.version"
           " WHERE (%(start)s::timestamptz IS NULL OR d.created_at >= %(start)s)"
           " AND (%(end)s::timestamptz IS NULL OR d.created_at < %(end)s)"
           " AND (%(mo)s::text IS NULL OR m.oid = %(mo)s OR m.code = %(mo)s)")


@dataclass(frozen=True)
class Count:
    """Documents of one group: МО, kind (НСИ 1520), local day, status family and, for errors, the error's class."""
    mo: str
    mo_oid: str
    kind_code: int
    day: dt.date
    status: str
    error_code: str | None       # the ledger's code (iemk_etl.errors); None when not an error or not in the ledger
    error_title: str | None      # for an error without a code: the first part of its reason
    documents: int


@dataclass(frozen=True)
class ErrorRow:
    """One document in error: ids and the reason, no patient data."""
    status_at: dt.datetime
    mo: str
    document_id: int
    local_uid: str
    version: int
    kind_code: int
    error_code: str | None
    status: str


def _params(start: dt.datetime | None, end: dt.datetime | None, mo: str | None, **extra: object) -> dict[str, object]:
    return {"start": start, "end": end, "mo": mo, "error_prefix": statuses.ERROR_PREFIX, "error": statuses.ERROR,
            "prefix_len": len(statuses.ERROR_PREFIX) + 1, **extra}


def counts(conn: psycopg.Connection, start: dt.datetime | None, end: dt.datetime | None, mo: str | None,
           tz: str) -> list[Count]:
    """Documents created in [start, end) (of one МО, by OID or code, or all), counted per МО, kind, local day,
    status family and error class."""
    rows = conn.execute(
        f"SELECT m.code, m.oid, d.kind_code, (d.created_at AT TIME ZONE %(tz)s)::date AS day, {_FAMILY} AS status,"
        f" CASE WHEN starts_with(d.status, %(error_prefix)s) THEN l.error_code END AS code,"
        f" CASE WHEN starts_with(d.status, %(error_prefix)s) THEN {_TITLE} END AS title, count(*)"
        + _PERIOD + " GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 3, 4, 5",
        _params(start, end, mo, tz=tz)).fetchall()
    return [Count(*r) for r in rows]


def latest_errors(conn: psycopg.Connection, start: dt.datetime | None, end: dt.datetime | None, mo: str | None,
                  limit: int) -> list[ErrorRow]:
    """The documents created in [start, end) now in «Ошибка: …», the most recently changed first."""
    rows = conn.execute(
        "SELECT d.status_at, m.code, d.id, d.local_uid, d.version, d.kind_code, l.error_code, d.status"
        + _PERIOD + " AND starts_with(d.status, %(error_prefix)s) ORDER BY d.status_at DESC, d.id DESC LIMIT %(limit)s",
        _params(start, end, mo, limit=limit)).fetchall()
    return [ErrorRow(*r) for r in rows]


@dataclass(frozen=True)
class SentRow:
    """One document the ledger sent (its current version): ids, status and when it was last sent."""
    document_id: int
    mo: str
    local_uid: str
    version: int
    kind_code: int
    status: str
    last_sent_at: dt.datetime


def sent_documents(conn: psycopg.Connection, start: dt.datetime | None, end: dt.datetime | None, mo: str | None,
                   limit: int) -> list[SentRow]:
    """The documents created in [start, end) that were sent to ИЭМК, the most recently sent first."""
    rows = conn.execute(
        "SELECT d.id, m.code, d.local_uid, d.version, d.kind_code, d.status, l.last_sent_at"
        + _PERIOD + " AND l.last_sent_at IS NOT NULL ORDER BY l.last_sent_at DESC, d.id DESC LIMIT %(limit)s",
        _params(start, end, mo, limit=limit)).fetchall()
    return [SentRow(*r) for r in rows]


def last_sent(conn: psycopg.Connection, document_ids: list[int]) -> dict[int, dt.datetime]:
    """When the current version of each of these documents was last sent (documents never sent left out)."""
    rows = conn.execute(
        "SELECT d.id, l.last_sent_at FROM mis.semd_document d"
        " JOIN iemk.ledger l ON l.document_id = d.id AND l.version = d.version"
        " WHERE d.id = ANY(%s) AND l.last_sent_at IS NOT NULL", (document_ids,)).fetchall()
    return {int(r[0]): r[1] for r in rows}
