"""The export ledger: one row per (МО, document uniqueId, version), the record of what happened to it.

The status a user sees in the МИС is derived from the ledger state and written back in the same
transaction as every state change, so the two never disagree for long; ``sync_statuses`` repairs any
drift (e.g. a МИС-side edit of the status column).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

import psycopg

from iemk_etl import statuses
from iemk_etl.statuses import ERROR_PREFIX, SENT, SIGNED, STORED

# A stable namespace for MessageIDs derived from document content (see ``message_id``).
_MESSAGE_NS = uuid.UUID("8f1f2f5e-4f0b-4c55-9d0c-2d1b6b1f0e42")


class State(enum.StrEnum):
    QUEUED = "queued"        # taken from the outbox, not yet checked
    VALID = "valid"          # passed format control, waiting to be sent (or to be re-sent after a transient error)
    INVALID = "invalid"      # failed format control here: never sent
    SENT = "sent"            # ИЭМК accepted the request; the asynchronous answer is awaited
    STORED = "stored"        # ИЭМК answered Success
    REJECTED = "rejected"    # ИЭМК refused it (synchronously or in the asynchronous answer)
    FAILED = "failed"        # could not be delivered within the allowed attempts


FINAL = frozenset({State.INVALID, State.STORED, State.REJECTED, State.FAILED})
OPEN = frozenset(State) - FINAL


# Errors that hold a document back without ending it: shown to users, cleared by the next good attempt.
BLOCKING_CODES = frozenset({"SIGNING_KEY"})


def visible_status(state: str, last_error: str | None, error_code: str | None = None) -> str:
    s = State(state)
    if s in (State.QUEUED, State.VALID):
        return ERROR_PREFIX + (last_error or "") if error_code in BLOCKING_CODES else SIGNED
    if s is State.SENT:
        return SENT
    if s is State.STORED:
        return STORED
    return statuses.error(last_error)


def message_id(mo_oid: str, unique_id: str, version: int, content_hash: str, resend_round: int = 0) -> str:
    """The WS-Addressing MessageID of a document's submission.

    Derived from the content, so every resend of the same bytes (a retry, a crash between the POST and
    the commit, a concurrent backfill) carries the same MessageID and the receiver can drop the repeat.
    """
    key = f"{mo_oid}|{unique_id}|{version}|{content_hash}" + (f"|{resend_round}" if resend_round else "")
    return f"urn:uuid:{uuid.uuid5(_MESSAGE_NS, key)}"


def set_state(conn: psycopg.Connection, ledger_id: int, state: State, *, error: str | None = None,
              error_code: str | None = None) -> str:
    """Move one ledger row to ``state`` and write the derived status to the МИС document; returns it."""
    error = statuses.clip(error)
    status = visible_status(state, error, error_code)
    conn.execute(
        "WITH l AS ("
        "  UPDATE iemk.ledger SET state = %(state)s, last_error = %(error)s, error_code = %(code)s,"
        "         updated_at = now(),"
        "         replied_at = CASE WHEN %(state)s IN ('stored', 'rejected') AND message_id IS NOT NULL"
        "                           THEN now() ELSE replied_at END"
        "  WHERE id = %(id)s RETURNING document_id)"
        " UPDATE mis.semd_document d SET status = %(status)s, status_at = now()"
        " FROM l WHERE d.id = l.document_id AND d.status IS DISTINCT FROM %(status)s",
        {"state": state.value, "error": error, "code": error_code, "id": ledger_id, "status": status},
    )
    return status


def send_again(conn: psycopg.Connection, ledger_id: int, *, reason: str, code: str) -> int:
    """Put a document back in line for a new round: a new MessageID, so the receiver does not drop it as a
    repeat. Returns the round it is now in."""
    row = conn.execute("UPDATE iemk.ledger SET resend_round = resend_round + 1, message_id = NULL WHERE id = %s"
                       " RETURNING resend_round", (ledger_id,)).fetchone()
    set_state(conn, ledger_id, State.VALID, error=reason, error_code=code)
    return row[0] if row else 0


def sync_statuses(conn: psycopg.Connection, ledger_ids: list[int]) -> int:
    """Rewrite the МИС status of these documents where it differs from the ledger; returns rows fixed."""
    fixed = 0
    rows = conn.execute(
        "SELECT l.document_id, l.state, l.last_error, l.error_code, d.status FROM iemk.ledger l"
        " JOIN mis.semd_document d ON d.id = l.document_id WHERE l.id = ANY(%s)",
        (ledger_ids,),
    ).fetchall()
    for document_id, state, last_error, error_code, current in rows:
        wanted = visible_status(state, last_error, error_code)
        if current != wanted:
            conn.execute("UPDATE mis.semd_document SET status = %s, status_at = now() WHERE id = %s",
                         (wanted, document_id))
            fixed += 1
    return fixed


# -- reads for the command line


@dataclass(frozen=True)
class LedgerRow:
    """One version of a document in the ledger, as `iemk-etl status --document` shows it."""

    id: int
    state: str
    attempts: int
    message_id: str | None
    last_sent_at: dt.datetime | None
    replied_at: dt.datetime | None
    last_error: str | None


def rows_of_document(conn: psycopg.Connection, document_id: int) -> list[LedgerRow]:
    """Every ledger row of a МИС document, oldest version first."""
    rows = conn.execute("SELECT id, state, attempts, message_id, last_sent_at, replied_at, last_error"
                        " FROM iemk.ledger WHERE document_id = %s ORDER BY version", (document_id,)).fetchall()
    return [LedgerRow(*r) for r in rows]
