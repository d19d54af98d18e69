"""The СЭМД rows of the МИС (mis.semd_document): formed, signed, and the status users see.

Setting ``signed_at`` fires the МИС's procedure 1, which puts the document into the outbox; nothing here
decides anything about the export.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class FormedDocument:
    id: int
    version: int
    signed: bool
    cda: bytes
    status: str | None
    source_hash: str | None      # of the МИС record it was formed from; None for rows formed before it was kept


@dataclass(frozen=True)
class ToSign:
    kind_code: int
    cda: bytes
    author_local_id: str
    mo_code: str


@dataclass(frozen=True)
class Header:
    status: str | None
    local_uid: str
    version: int


# --- forming -----------------------------------------------------------------------------------------

def latest_formed(conn: psycopg.Connection, mo_oid: str, kind_code: int, source: str) -> FormedDocument | None:
    """The newest version formed from this record, locked for the caller's transaction."""
    row = conn.execute(
        "SELECT id, version, signed_at IS NOT NULL, cda, status, source_hash FROM mis.semd_document"
        " WHERE mo_oid = %s AND kind_code = %s AND source = %s ORDER BY version DESC LIMIT 1 FOR UPDATE",
        (mo_oid, kind_code, source)).fetchone()
    if row is None:
        return None
    document_id, version, signed, cda, status, source_hash = row
    return FormedDocument(document_id, version, signed, bytes(cda), status, source_hash)


def replace_formed(conn: psycopg.Connection, document_id: int, cda: bytes, status: str, author_id: int,
                   source_hash: str) -> None:
    """An unsigned document re-formed from its record as it is now."""
    conn.execute("UPDATE mis.semd_document SET cda = %s, status = %s, status_at = now(), author_id = %s,"
                 " source_hash = %s WHERE id = %s", (cda, status, author_id, source_hash, document_id))


def set_source_hash(conn: psycopg.Connection, document_id: int, source_hash: str) -> None:
    """Record which МИС record a formed document stands for, without touching the document."""
    conn.execute("UPDATE mis.semd_document SET source_hash = %s WHERE id = %s", (source_hash, document_id))


def insert_formed(conn: psycopg.Connection, *, mo_oid: str, kind_code: int, patient_id: int, author_id: int,
                  local_uid: str, version: int, created_at: dt.datetime, cda: bytes, status: str,
                  source: str, source_hash: str | None = None) -> int:
    """A new document row (a first version or the next one); returns its id."""
    row = conn.execute(
        "INSERT INTO mis.semd_document (mo_oid, kind_code, patient_id, author_id, local_uid, version, created_at,"
        " cda, status, source, source_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (mo_oid, kind_code, patient_id, author_id, local_uid, version, created_at, cda, status, source,
         source_hash)).fetchone()
    assert row is not None  # noqa: S101 - INSERT … RETURNING always returns the row
    return int(row[0])


# --- signing -----------------------------------------------------------------------------------------

def unsigned(conn: psycopg.Connection, mo_oid: str, start: dt.datetime, end: dt.datetime,
             kind_codes: list[int] | None = None) -> list[int]:
    """Ids of the МО's formed, unsigned documents created in [start, end) (optionally of some kinds)."""
    return [r[0] for r in conn.execute(
        "SELECT d.id FROM mis.semd_document d"
        " WHERE d.mo_oid = %s AND d.signed_at IS NULL AND d.created_at >= %s AND d.created_at < %s"
        "   AND length(d.cda) > 0"  # a record that could not be formed keeps its «Ошибка: …»
        "   AND (%s::int[] IS NULL OR d.kind_code = ANY(%s::int[]))"
        " ORDER BY d.created_at, d.id", (mo_oid, start, end, kind_codes, kind_codes))]


def lock_unsigned(conn: psycopg.Connection, document_id: int) -> ToSign | None:
    """The document to sign with its author and МО, locked; None when signed meanwhile or another run holds it."""
    row = conn.execute(
        "SELECT d.kind_code, d.cda, s.local_id, m.code FROM mis.semd_document d"
        " JOIN mis.staff s ON s.id = d.author_id JOIN mis.mo m ON m.oid = d.mo_oid"
        " WHERE d.id = %s AND d.signed_at IS NULL FOR UPDATE OF d SKIP LOCKED", (document_id,)).fetchone()
    if row is None:
        return None
    kind_code, cda, author_local_id, mo_code = row
    return ToSign(kind_code, bytes(cda), author_local_id, mo_code)


def mark_signed(conn: psycopg.Connection, document_id: int, signature: bytes, org_signature: bytes | None,
                status: str, signed_at: dt.datetime | None = None) -> None:
    """Store the signatures; ``signed_at`` defaults to now. This fires procedure 1 (into the outbox)."""
    conn.execute(
        "UPDATE mis.semd_document SET signature = %s, org_signature = %s, signed_at = coalesce(%s, now()),"
        " status = %s, status_at = now() WHERE id = %s",
        (signature, org_signature, signed_at, status, document_id))


def signed_in_period(conn: psycopg.Connection, mo_oid: str, start: dt.datetime, end: dt.datetime) -> list[int]:
    """Ids of the МО's signed documents created in [start, end)."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM mis.semd_document WHERE mo_oid = %s AND signed_at IS NOT NULL"
        " AND created_at >= %s AND created_at < %s", (mo_oid, start, end))]


# --- the visible status ------------------------------------------------------------------------------

def set_status(conn: psycopg.Connection, document_id: int, status: str) -> bool:
    """Write the status users see in the МИС; True when it changed (an equal status is left, time included)."""
    return conn.execute(
        "UPDATE mis.semd_document SET status = %s, status_at = now() WHERE id = %s AND status IS DISTINCT FROM %s",
        (status, document_id, status)).rowcount > 0


def statuses(conn: psycopg.Connection, document_ids: list[int]) -> dict[int, str | None]:
    """The current visible status of each of these documents."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT id, status FROM mis.semd_document WHERE id = ANY(%s)", (document_ids,))}


# --- one document, for people asking about it --------------------------------------------------------

def mo_of_document(conn: psycopg.Connection, document_id: int) -> tuple[str, str] | None:
    """(МО OID, МО code) of a document, or None when there is no such document."""
    row = conn.execute("SELECT m.oid, m.code FROM mis.semd_document d JOIN mis.mo m ON m.oid = d.mo_oid"
                       " WHERE d.id = %s", (document_id,)).fetchone()
    return (row[0], row[1]) if row else None


def header(conn: psycopg.Connection, document_id: int) -> Header | None:
    row = conn.execute("SELECT status, local_uid, version FROM mis.semd_document WHERE id = %s",
                       (document_id,)).fetchone()
    return Header(*row) if row else None
