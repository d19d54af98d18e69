"""The emulator's own state, in its own PostgreSQL schema ``emulator``: it survives a restart.

Messages received (with their verdicts, for the inspector and for dropping repeats), patients, documents, and the
asynchronous replies still to deliver. ``reset()`` clears it (``iemk-etl emulator reset``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS emulator;
CREATE TABLE IF NOT EXISTS emulator.message (
    message_id   text PRIMARY KEY,
    service      text NOT NULL,
    action       text,
    client_id    text,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    verdict      text NOT NULL,            -- accepted | fault | success | failure
    detail       text,
    repeats      int NOT NULL DEFAULT 0    -- the same MessageID delivered again (client retries)
);
CREATE INDEX IF NOT EXISTS message_received_idx ON emulator.message (received_at DESC);
CREATE TABLE IF NOT EXISTS emulator.document (
    unique_id     text PRIMARY KEY,
    patient_id    text NOT NULL,
    mo_oid        text,
    kind_code     int NOT NULL,
    content_hash  text NOT NULL,
    data          bytea NOT NULL,
    message_id    text NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS emulator.submission (
    message_id   text PRIMARY KEY REFERENCES emulator.message(message_id),
    reply_to     text NOT NULL,
    unique_id    text,
    patient_id   text,
    kind_code    int,
    author       text,
    data         bytea
);
CREATE TABLE IF NOT EXISTS emulator.reply (
    id           bigserial PRIMARY KEY,
    relates_to   text NOT NULL REFERENCES emulator.message(message_id),
    reply_to     text NOT NULL,
    due_at       timestamptz NOT NULL,
    state        text NOT NULL DEFAULT 'pending',   -- pending | delivered | undelivered
    attempts     int NOT NULL DEFAULT 0,
    body         bytea,
    last_error   text
);
CREATE INDEX IF NOT EXISTS reply_due_idx ON emulator.reply (due_at) WHERE state = 'pending';
"""

_TABLES = ("emulator.reply", "emulator.submission", "emulator.document", "emulator.message")


@dataclass(frozen=True)
class Submission:
    message_id: str
    reply_to: str
    unique_id: str | None
    patient_id: str | None
    kind_code: int | None
    author: str | None
    data: bytes | None


class Store:
    """A small pool of connections: request threads come and go, connections stay."""

    def __init__(self, dsn: str, size: int = 8) -> None:
        self.dsn = dsn
        self._pool: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._size = size
        self._made = 0
        self._lock = threading.Lock()
        with self.connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(7150521)")
            conn.execute(SCHEMA)  # type: ignore[arg-type]  # trusted, shipped with the package

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.dsn, connect_timeout=15, application_name="iemk-emulator")
        try:
            with conn.transaction():
                yield conn
        except BaseException:
            conn.close()
            raise
        if conn.closed or self._pool.qsize() >= self._size:
            conn.close()
        else:
            self._pool.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    def reset(self) -> None:
        with self.connection() as conn:
            conn.execute(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY")  # noqa: S608 - constant names

    # -- messages ---------------------------------------------------------------------------------------

    def record_message(self, message_id: str, service: str, action: str, client_id: str | None, verdict: str,
                       detail: str | None = None) -> bool:
        """True when this MessageID is new; a repeat is only counted."""
        with self.connection() as conn:
            row = conn.execute(
                "INSERT INTO emulator.message (message_id, service, action, client_id, verdict, detail)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (message_id)"
                " DO UPDATE SET repeats = emulator.message.repeats + 1 RETURNING (xmax = 0)",
                (message_id, service, action, client_id, verdict, detail)).fetchone()
        return bool(row and row[0])

    def set_verdict(self, message_id: str, verdict: str, detail: str | None) -> None:
        with self.connection() as conn:
            conn.execute("UPDATE emulator.message SET verdict = %s, detail = %s WHERE message_id = %s",
                         (verdict, detail, message_id))

    def recent_messages(self, limit: int = 200) -> list[dict[str, object]]:
        with self.connection() as conn:
            cur = conn.execute(
                "SELECT message_id, service, action, client_id, received_at, verdict, detail FROM emulator.message"
                " ORDER BY received_at DESC LIMIT %s", (limit,))
            columns = [c.name for c in cur.description or []]
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]

    # -- ITI-41 submissions and their replies -------------------------------------------------------------

    def accept_submission(self, sub: Submission, delay: float) -> None:
        with self.connection() as conn:
            conn.execute(
                "INSERT INTO emulator.submission (message_id, reply_to, unique_id, patient_id, kind_code, author, data)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (sub.message_id, sub.reply_to, sub.unique_id, sub.patient_id, sub.kind_code, sub.author, sub.data))
            conn.execute("INSERT INTO emulator.reply (relates_to, reply_to, due_at)"
                         " VALUES (%s, %s, clock_timestamp() + %s * interval '1 second')",
                         (sub.message_id, sub.reply_to, delay))

    def due_reply(self) -> tuple[int, Submission, bytes | None, int] | None:
        """Claim the next reply that is due: (reply id, its submission, body if computed, attempts)."""
        with self.connection() as conn:
            row = conn.execute(
                "UPDATE emulator.reply r SET due_at = clock_timestamp() + interval '60 seconds'"
                " WHERE r.id = (SELECT id FROM emulator.reply WHERE state = 'pending' AND due_at <= clock_timestamp()"
                "               ORDER BY due_at FOR UPDATE SKIP LOCKED LIMIT 1)"
                " RETURNING r.id, r.relates_to, r.body, r.attempts").fetchone()
            if row is None:
                return None
            reply_id, relates_to, body, attempts = row
            s = conn.execute("SELECT message_id, reply_to, unique_id, patient_id, kind_code, author, data"
                             " FROM emulator.submission WHERE message_id = %s", (relates_to,)).fetchone()
        data = Submission(*s[:6], bytes(s[6]) if s[6] is not None else None)
        return reply_id, data, bytes(body) if body is not None else None, attempts

    def next_due_in(self) -> float | None:
        with self.connection() as conn:
            row = conn.execute("SELECT extract(epoch FROM min(due_at) - clock_timestamp()) FROM emulator.reply"
                               " WHERE state = 'pending'").fetchone()
        return None if row is None or row[0] is None else max(0.0, float(row[0]))

    def save_reply_body(self, reply_id: int, body: bytes) -> None:
        with self.connection() as conn:
            conn.execute("UPDATE emulator.reply SET body = %s WHERE id = %s", (body, reply_id))

    def reply_attempted(self, reply_id: int, *, delivered: bool, error: str | None, retry_in: float | None) -> None:
        with self.connection() as conn:
            if delivered:
                conn.execute("UPDATE emulator.reply SET state = 'delivered', attempts = attempts + 1,"
                             " last_error = NULL WHERE id = %s", (reply_id,))
            elif retry_in is None:
                conn.execute("UPDATE emulator.reply SET state = 'undelivered', attempts = attempts + 1,"
                             " last_error = %s WHERE id = %s", (error, reply_id))
            else:
                conn.execute("UPDATE emulator.reply SET attempts = attempts + 1, last_error = %s,"
                             " due_at = clock_timestamp() + %s * interval '1 second' WHERE id = %s",
                             (error, retry_in, reply_id))

    # -- the registry --------------------------------------------------------------------------------------

    def document(self, unique_id: str) -> tuple[str, bytes] | None:
        with self.connection() as conn:
            row = conn.execute("SELECT content_hash, data FROM emulator.document WHERE unique_id = %s",
                               (unique_id,)).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def store_document(self, unique_id: str, patient_id: str, mo_oid: str | None, kind_code: int, content_hash: str,
                       data: bytes, message_id: str) -> bool:
        with self.connection() as conn:
            row = conn.execute(
                "INSERT INTO emulator.document (unique_id, patient_id, mo_oid, kind_code, content_hash, data,"
                " message_id) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (unique_id) DO NOTHING RETURNING 1",
                (unique_id, patient_id, mo_oid, kind_code, content_hash, data, message_id)).fetchone()
        return row is not None

    def received_unique_ids(self) -> set[str]:
        """Every document uniqueId that reached the repository (accepted for processing)."""
        with self.connection() as conn:
            return {r[0] for r in conn.execute("SELECT unique_id FROM emulator.submission WHERE unique_id IS NOT NULL")}

    # -- numbers ------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        with self.connection() as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM emulator.submission),"
                " (SELECT count(*) FROM emulator.message WHERE verdict = 'fault'),"
                " (SELECT count(*) FROM emulator.message WHERE verdict = 'success'),"
                " (SELECT count(*) FROM emulator.message WHERE verdict = 'failure'),"
                " (SELECT count(*) FROM emulator.reply WHERE state = 'delivered'),"
                " (SELECT count(*) FROM emulator.reply WHERE state = 'undelivered'),"
                " (SELECT count(*) FROM emulator.document),"
                " (SELECT coalesce(sum(repeats), 0)::int FROM emulator.message)").fetchone()
        names = ("received", "faults", "success", "failure", "replies_delivered", "replies_undelivered", "stored",
                 "duplicate_deliveries")
        return dict(zip(names, row or (0,) * len(names), strict=True))

