"""The replies inbox (iemk.inbox): ИЭМК's asynchronous answers, stored once per MessageID by the callback
receiver and turned into document states by the export's replies step.

Only answers to a MessageID we sent get there (``iemk.sent_message``, every round of every document); anything
else the receiver is posted waits in ``iemk.reply_quarantine``, which moves nothing, is counted and is purged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import psycopg


@dataclass(frozen=True)
class Answers:
    """Every stored answer to one sent ledger row, oldest first."""
    ledger_id: int
    bodies: list[bytes]
    message_ids: list[str]


class Doubt(StrEnum):
    """Why a reply went to quarantine instead of the inbox."""
    NO_RELATES_TO = "no_relates_to"              # answers nothing
    UNKNOWN_RELATES_TO = "unknown_relates_to"    # answers a MessageID we never sent (yet: see admit_quarantined)
    # IEMK_REPLY_SIGNATURE=require and the reply is unsigned, its signature does not verify under the reply profile,
    # or its certificate is not one of IEMK_REPLY_CERTIFICATES (migration 014 folded 'unsigned'/'bad_signature' here).
    UNTRUSTED_SIGNER = "untrusted_signer"


# A quarantined reply keeps at most this much of its body: junk must not grow the database (an answer of ИЭМК is
# a few KiB). A cut body is never admitted into the inbox.
QUARANTINE_BODY_BYTES = 1024 * 1024
# However many replies arrive between two purges, the quarantine keeps the newest this many.
QUARANTINE_MAX_ROWS = 10_000
# A reply may arrive before the send that asked for it is recorded (the answer beats the commit, or a crash lost
# the commit and the next run sends the same MessageID again): it is admitted once the send is recorded, if it
# came no earlier than this before it.
_ADMIT_MARGIN = "1 hour"


def record_sent(conn: psycopg.Connection, message_id: str, ledger_id: int) -> None:
    """A document went out under ``message_id``: answers to it are ours from now on (kept for every round)."""
    conn.execute("INSERT INTO iemk.sent_message (message_id, ledger_id) VALUES (%s, %s)"
                 " ON CONFLICT (message_id) DO NOTHING", (message_id, ledger_id))


def was_sent(conn: psycopg.Connection, message_id: str) -> bool:
    """Whether we sent anything under ``message_id`` (any round; the ledger's current MessageID included)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM iemk.sent_message WHERE message_id = %(m)s)"
        " OR EXISTS (SELECT 1 FROM iemk.ledger WHERE message_id = %(m)s)", {"m": message_id}).fetchone()
    return bool(row and row[0])


def quarantine(conn: psycopg.Connection, message_id: str, relates_to: str | None, action: str | None,
               body: bytes, doubt: Doubt) -> int:
    """Keep a reply that must not move anything; returns how many times this MessageID came."""
    row = conn.execute(
        "INSERT INTO iemk.reply_quarantine (message_id, relates_to, action, reason, body_bytes, body)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (message_id) DO UPDATE"
        " SET hits = iemk.reply_quarantine.hits + 1, last_received_at = now() RETURNING hits",
        (message_id, relates_to, action, doubt.value, len(body), body[:QUARANTINE_BODY_BYTES])).fetchone()
    return int(row[0]) if row else 1


def admit_quarantined(conn: psycopg.Connection) -> int:
    """Move into the inbox the quarantined answers whose MessageID we have since recorded as sent (an answer that
    beat our commit); returns how many."""
    row = conn.execute(
        "WITH ours AS ("
        "   DELETE FROM iemk.reply_quarantine q USING iemk.sent_message s"
        "   WHERE q.reason = 'unknown_relates_to' AND s.message_id = q.relates_to"
        "     AND q.received_at >= s.sent_at - %s::interval AND length(q.body) = q.body_bytes"
        "   RETURNING q.message_id, q.relates_to, q.action, q.received_at, q.body),"
        " moved AS (INSERT INTO iemk.inbox (message_id, relates_to, action, received_at, body)"
        "   SELECT message_id, relates_to, action, received_at, body FROM ours ON CONFLICT DO NOTHING RETURNING 1)"
        " SELECT count(*) FROM moved", (_ADMIT_MARGIN,)).fetchone()
    return int(row[0]) if row else 0


def quarantined(conn: psycopg.Connection) -> dict[str, int]:
    """Replies in quarantine now, by reason: every reason of ``Doubt``, 0 when none."""
    found = {reason: n for reason, n in conn.execute(
        "SELECT reason, count(*) FROM iemk.reply_quarantine GROUP BY reason ORDER BY reason")}
    return {**{d.value: 0 for d in Doubt}, **found}


def purge_quarantine(conn: psycopg.Connection, days: int, max_rows: int = QUARANTINE_MAX_ROWS) -> int:
    """Drop quarantined replies last posted more than ``days`` ago, and all but the newest ``max_rows``."""
    old = conn.execute("DELETE FROM iemk.reply_quarantine WHERE last_received_at < now() - make_interval(days => %s)",
                       (days,)).rowcount
    over = conn.execute(
        "DELETE FROM iemk.reply_quarantine WHERE message_id IN (SELECT message_id FROM iemk.reply_quarantine"
        " ORDER BY last_received_at DESC, message_id OFFSET %s)", (max_rows,)).rowcount
    return old + over


def insert(conn: psycopg.Connection, message_id: str, relates_to: str | None, action: str | None,
           body: bytes) -> bool:
    """Store one reply; False when that MessageID was stored already."""
    row = conn.execute(
        "INSERT INTO iemk.inbox (message_id, relates_to, action, body) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        (message_id, relates_to, action, body),
    ).fetchone()
    return row is not None


def answered_of_sent(conn: psycopg.Connection, ledger_ids: list[int]) -> tuple[int, int]:
    """(answered, awaited): of the rows among ``ledger_ids`` sent and awaiting an answer, how many have one."""
    awaited, answered = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE EXISTS ("
        "   SELECT 1 FROM iemk.inbox i WHERE i.relates_to = l.message_id))"
        " FROM iemk.ledger l WHERE l.id = ANY(%s) AND l.state = 'sent'",
        (ledger_ids,),
    ).fetchone() or (0, 0)
    return answered, awaited


def answers_to_sent(conn: psycopg.Connection, mo_oid: str) -> list[Answers]:
    """The stored answers of the МО's ledger rows that have any for their current MessageID: rows sent, and rows
    whose synchronous answer never came through (waiting on the backoff ladder, or given up as failed) — ИЭМК
    answering that MessageID means it took the request, whatever our side saw of the HTTP exchange."""
    rows = conn.execute(
        "SELECT l.id, array_agg(i.body ORDER BY i.received_at), array_agg(i.message_id)"
        " FROM iemk.ledger l JOIN iemk.inbox i ON i.relates_to = l.message_id"
        " WHERE l.mo_oid = %s AND (l.state = 'sent' OR (l.state IN ('valid', 'failed') AND i.processed_at IS NULL))"
        " GROUP BY l.id",
        (mo_oid,),
    ).fetchall()
    return [Answers(ledger_id, [bytes(b) for b in bodies], list(ids)) for ledger_id, bodies, ids in rows]


def mark_processed(conn: psycopg.Connection, message_ids: list[str]) -> None:
    conn.execute("UPDATE iemk.inbox SET processed_at = now() WHERE message_id = ANY(%s)", (message_ids,))
