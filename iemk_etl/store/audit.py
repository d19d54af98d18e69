"""The audit archive (iemk.audit_exchange): every envelope sent to and received from ИЭМК, compressed, with what
identifies it (direction, action, MessageID, RelatesTo, ledger id, МО, HTTP status, sizes, SHA-256 of the raw bytes).

Recording is cheap and never breaks an exchange: ``Recorder`` writes on a connection of its own (autocommit, so a
document transaction rolled back or aborted never takes an archived envelope with it, and an archive failure never
aborts a document transaction), and a failure is logged without content and ignored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import psycopg

from iemk_etl.store import db, integration

log = logging.getLogger(__name__)

OUT, IN = "out", "in"
REQUEST, ANSWER, REPLY = "request", "answer", "reply"   # what we sent, its synchronous answer, an asynchronous reply


class SizedIterable(Protocol):
    """A message's bytes in chunks, with its whole length (``protocol.soap.SplicedMessage``)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class Envelope:
    """One envelope to archive, as it went out or came in (``raw``: the exact bytes)."""
    direction: str
    kind: str
    raw: bytes | SizedIterable      # an ITI-41 request: soap.SplicedMessage, its bytes in chunks
    service: str | None = None
    action: str | None = None
    message_id: str | None = None
    relates_to: str | None = None
    ledger_id: int | None = None
    mo_oid: str | None = None
    http_status: int | None = None


@dataclass(frozen=True)
class Row:
    """An archived envelope without its body."""
    id: int
    at: dt.datetime
    direction: str
    kind: str
    service: str | None
    action: str | None
    message_id: str | None
    relates_to: str | None
    ledger_id: int | None
    mo_oid: str | None
    http_status: int | None
    raw_size: int
    stored_size: int
    sha256: str


_COLUMNS = ("id, at, direction, kind, service, action, message_id, relates_to, ledger_id, mo_oid, http_status,"
            " raw_size, stored_size, sha256")

# The ledger id, when the caller did not know it: a reply or answer relates to a request we archived with its
# ledger id (any resend round), else to the ledger's current MessageID.
_INSERT = """
WITH link AS (
    SELECT coalesce(
        %(ledger_id)s::bigint,
        (SELECT a.ledger_id FROM iemk.audit_exchange a
          WHERE a.direction = 'out' AND a.message_id = %(relates_to)s AND a.ledger_id IS NOT NULL LIMIT 1),
        (SELECT l.id FROM iemk.ledger l WHERE l.message_id = coalesce(%(relates_to)s, %(message_id)s))
    ) AS ledger_id
)
INSERT INTO iemk.audit_exchange (direction, kind, service, action, message_id, relates_to, ledger_id, mo_oid,
                                 http_status, raw_size, stored_size, sha256, body)
SELECT %(direction)s, %(kind)s, %(service)s, %(action)s, %(message_id)s, %(relates_to)s, link.ledger_id,
       coalesce(%(mo_oid)s, (SELECT l.mo_oid FROM iemk.ledger l WHERE l.id = link.ledger_id)),
       %(http_status)s, %(raw_size)s, %(stored_size)s, %(sha256)s, %(body)s
  FROM link
RETURNING id
"""


def insert(conn: psycopg.Connection, envelope: Envelope) -> int:
    """Archive one envelope (compressed); its id. A message given in chunks (an ITI-41 request with its document
    spliced in) is compressed, hashed and sent to the database a chunk at a time (``_insert_streamed``)."""
    if not isinstance(envelope.raw, bytes):
        return _insert_streamed(conn, envelope, envelope.raw)
    packed = zlib.compress(envelope.raw, 6)
    return _insert(conn, _INSERT, envelope, {"raw_size": len(envelope.raw), "stored_size": len(packed),
                                             "sha256": hashlib.sha256(envelope.raw).hexdigest(), "body": packed})


def _insert(conn: psycopg.Connection, sql: str, envelope: Envelope, values: dict[str, object]) -> int:
    row = conn.execute(sql, {
        "direction": envelope.direction, "kind": envelope.kind, "service": envelope.service,
        "action": envelope.action, "message_id": envelope.message_id, "relates_to": envelope.relates_to,
        "ledger_id": envelope.ledger_id, "mo_oid": envelope.mo_oid, "http_status": envelope.http_status, **values,
    }).fetchone()
    if row is None:  # pragma: no cover - INSERT … RETURNING always returns the row
        raise RuntimeError("audit insert returned nothing")
    return int(row[0])


# The compressed body of a message archived in chunks passes through this session's table: COPY takes it a chunk at
# a time (as hex text: bytea's text form), where a parameter would be the whole of it, copied by psycopg and again
# into libpq's output buffer (3× the compressed size at once, ≈ 3× a big document's size).
_STAGE = "CREATE TEMP TABLE IF NOT EXISTS audit_body_stage (body bytea) ON COMMIT DELETE ROWS"
_INSERT_STAGED = _INSERT.replace("%(body)s", "(SELECT body FROM audit_body_stage)")


def _insert_streamed(conn: psycopg.Connection, envelope: Envelope, raw: SizedIterable) -> int:
    compressor, digest, stored = zlib.compressobj(6), hashlib.sha256(), 0
    with conn.transaction():
        conn.execute(_STAGE)
        with conn.cursor().copy("COPY audit_body_stage (body) FROM STDIN") as copy:
            copy.write(b"\\\\x")                 # COPY's text form unescapes it to bytea's \x prefix
            for chunk in raw:
                digest.update(chunk)
                packed = compressor.compress(chunk)
                stored += len(packed)
                copy.write(packed.hex().encode())
            packed = compressor.flush()
            stored += len(packed)
            copy.write(packed.hex().encode() + b"\n")
        return _insert(conn, _INSERT_STAGED, envelope,
                       {"raw_size": len(raw), "stored_size": stored, "sha256": digest.hexdigest()})


def of_ledger(conn: psycopg.Connection, ledger_ids: list[int]) -> list[Row]:
    """The exchange of these ledger rows in order: rows linked by ledger id, and every envelope whose MessageID or
    RelatesTo is a MessageID they were sent under (any round; also replies archived before their request was
    linked)."""
    return [Row(*r) for r in conn.execute(
        f"WITH mids AS ("
        f"   SELECT message_id FROM iemk.ledger WHERE id = ANY(%(ids)s) AND message_id IS NOT NULL"
        f"   UNION SELECT message_id FROM iemk.audit_exchange"
        f"    WHERE ledger_id = ANY(%(ids)s) AND direction = 'out' AND message_id IS NOT NULL)"
        f" SELECT {_COLUMNS} FROM iemk.audit_exchange a"
        f" WHERE a.ledger_id = ANY(%(ids)s)"
        f"    OR a.message_id IN (SELECT message_id FROM mids) OR a.relates_to IN (SELECT message_id FROM mids)"
        f" ORDER BY a.at, a.id",
        {"ids": ledger_ids})]


def of_document(conn: psycopg.Connection, document_id: int) -> list[Row]:
    """The exchange of every version of one МИС document, in order."""
    ids = [r[0] for r in conn.execute("SELECT id FROM iemk.ledger WHERE document_id = %s", (document_id,))]
    return of_ledger(conn, ids) if ids else []


def body(conn: psycopg.Connection, audit_id: int) -> bytes | None:
    """The raw bytes of one archived envelope (decompressed), None when there is no such row."""
    row = conn.execute("SELECT body FROM iemk.audit_exchange WHERE id = %s", (audit_id,)).fetchone()
    return zlib.decompress(bytes(row[0])) if row else None


def purge(conn: psycopg.Connection, retention_days: int) -> int:
    """Delete the envelopes archived more than ``retention_days`` days ago; how many."""
    cur = conn.execute("DELETE FROM iemk.audit_exchange WHERE at < now() - make_interval(days => %s)",
                       (retention_days,))
    return cur.rowcount


class Recorder:
    """Archives envelopes on a connection of its own; the ИЭМК client's observer (``on_exchange``) and the callback
    receiver's. Never raises: a failure is logged (the error's type only, never content) and the exchange goes on.

    ``mo`` (an OID or a code) marks every envelope of this recorder with the МО's OID, resolved once; envelopes
    linked to a ledger row take its МО anyway. Safe to share between threads (the receiver is threaded).
    ``persistent=False`` connects per envelope, for an owner that is never closed."""

    def __init__(self, dsn: str, mo: str | None = None, *, persistent: bool = True) -> None:
        self._dsn = dsn
        self._mo = mo
        self._persistent = persistent
        self._mo_oid: str | None = None
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self.failures = 0

    def on_exchange(self, envelope: Envelope) -> None:
        with self._lock:
            try:
                conn = self._connection()
                if envelope.mo_oid is None and self._mo_oid is not None:
                    envelope = _with_mo(envelope, self._mo_oid)
                insert(conn, envelope)
                if not self._persistent:
                    self._drop_connection()
            except Exception as exc:  # noqa: BLE001 - the archive must never stop an exchange
                self.failures += 1
                log.warning("audit: envelope %s/%s not archived (%s)", envelope.direction, envelope.kind,
                            type(exc).__name__)
                self._drop_connection()

    record = on_exchange

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(self._dsn, autocommit=True)
            if self._mo and self._mo_oid is None:
                self._mo_oid = _resolve_mo(self._conn, self._mo)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail too; nothing to do
                pass
            self._conn = None


def _with_mo(envelope: Envelope, mo_oid: str) -> Envelope:
    return replace(envelope, mo_oid=mo_oid)


def _resolve_mo(conn: psycopg.Connection, mo: str) -> str | None:
    try:
        return integration.resolve_mo(conn, mo).oid
    except integration.UnknownMoError:
        return None
