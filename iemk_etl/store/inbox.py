"""The replies inbox (iemk.inbox): ИЭМК's asynchronous answers, stored once per MessageID by the callback
receiver and turned into document states by the export's replies step."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Answers:
    """Every stored answer to one sent ledger row, oldest first."""
    ledger_id: int
    bodies: list[bytes]
    message_ids: list[str]


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
    """The stored answers of every sent ledger row of the МО that has any."""
    rows = conn.execute(
        "SELECT l.id, array_agg(i.body ORDER BY i.received_at), array_agg(i.message_id)"
        " FROM iemk.ledger l JOIN iemk.inbox i ON i.relates_to = l.message_id"
        " WHERE l.mo_oid = %s AND l.state = 'sent' GROUP BY l.id",
        (mo_oid,),
    ).fetchall()
    return [Answers(ledger_id, [bytes(b) for b in bodies], list(ids)) for ledger_id, bodies, ids in rows]


def mark_processed(conn: psycopg.Connection, message_ids: list[str]) -> None:
    conn.execute("UPDATE iemk.inbox SET processed_at = now() WHERE message_id = ANY(%s)", (message_ids,))
