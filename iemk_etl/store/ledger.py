"""The export ledger: one row per (МО, document uniqueId, version), the record of what happened to it.

The status a user sees in the МИС is derived from the ledger state and written back in the same
transaction as every state change, so the two never disagree for long; ``sync_statuses`` repairs any
drift (e.g. a МИС-side edit of the status column). The МИС side of that is ``store.mis.documents``:
this module's statements touch iemk.ledger only.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from iemk_etl import errors, statuses
from iemk_etl.statuses import SENT, SIGNED, STORED
from iemk_etl.store.mis import documents as mis_documents

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




def visible_status(state: str, last_error: str | None, error_code: str | None = None) -> str:
    s = State(state)
    if s in (State.QUEUED, State.VALID):
        # A document held for a cause someone must fix shows the error; one waiting to be (re)tried is «Подписан».
        return statuses.error(last_error) if error_code and errors.kind(error_code).holds else SIGNED
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


def _known(code: str | None) -> str | None:
    # Every code the ledger keeps is one of the taxonomy's: reports and decisions read its actor and retry.
    if code is not None and not errors.known(code):
        raise ValueError(f"error code {code!r} is not in iemk_etl.errors: every ledger error code comes from it")
    return code


def set_state(conn: psycopg.Connection, ledger_id: int, state: State, *, error: str | None = None,
              error_code: str | None = None) -> str:
    """Move one ledger row to ``state`` and write the derived status to the МИС document; returns it.

    Both writes share one transaction (a savepoint inside the caller's): the МИС never shows a status the
    ledger does not hold."""
    error, error_code = statuses.clip(error), _known(error_code)
    status = visible_status(state, error, error_code)
    with conn.transaction():
        row = conn.execute(
            "UPDATE iemk.ledger SET state = %(state)s, last_error = %(error)s, error_code = %(code)s,"
            "       updated_at = now(),"
            "       replied_at = CASE WHEN %(state)s IN ('stored', 'rejected') AND message_id IS NOT NULL"
            "                         THEN now() ELSE replied_at END"
            " WHERE id = %(id)s RETURNING document_id",
            {"state": state.value, "error": error, "code": error_code, "id": ledger_id},
        ).fetchone()
        if row is not None:
            mis_documents.set_status(conn, row[0], status)
    return status


def send_again(conn: psycopg.Connection, ledger_id: int, *, reason: str, code: str,
               restart_ladder: bool = False) -> int:
    """Put a document back in line for a new round: a new MessageID, so the receiver does not drop it as a
    repeat; the round that ends is kept in iemk.ledger_round. The new round is due at once; ``restart_ladder``
    (a person asked for it) also starts the backoff ladder afresh. Returns the round it is now in."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO iemk.ledger_round (ledger_id, round, message_id, state, error_code, last_error, attempts,"
            "  first_sent_at, last_sent_at, replied_at, next_reason)"
            " SELECT id, resend_round, message_id, state, error_code, last_error, attempts, first_sent_at,"
            "  last_sent_at, replied_at, %s FROM iemk.ledger WHERE id = %s"
            " ON CONFLICT (ledger_id, round) DO NOTHING",
            (statuses.clip(reason), ledger_id))
        row = conn.execute(
            "UPDATE iemk.ledger SET resend_round = resend_round + 1, message_id = NULL, next_attempt_at = NULL,"
            " retry_step = CASE WHEN %(restart)s THEN 0 ELSE retry_step END,"
            " retry_since = CASE WHEN %(restart)s THEN NULL ELSE retry_since END"
            " WHERE id = %(id)s RETURNING resend_round", {"restart": restart_ladder, "id": ledger_id}).fetchone()
        set_state(conn, ledger_id, State.VALID, error=reason, error_code=code)
    return row[0] if row else 0


def sync_statuses(conn: psycopg.Connection, ledger_ids: list[int]) -> int:
    """Rewrite the МИС status of these documents where it differs from the ledger; returns rows fixed."""
    rows = conn.execute(
        "SELECT document_id, state, last_error, error_code FROM iemk.ledger WHERE id = ANY(%s)", (ledger_ids,),
    ).fetchall()
    current = mis_documents.statuses(conn, [r[0] for r in rows])
    fixed = 0
    for document_id, state, last_error, error_code in rows:
        wanted = visible_status(state, last_error, error_code)
        if document_id in current and current[document_id] != wanted:
            mis_documents.set_status(conn, document_id, wanted)
            fixed += 1
    return fixed


# --- rows ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NewEntry:
    mo_oid: str
    unique_id: str
    version: int
    document_id: int
    kind_code: int
    signed_at: dt.datetime
    content_hash: str


@dataclass(frozen=True)
class History:
    """One ledger row of a document, as people are shown it."""
    state: str
    attempts: int
    message_id: str | None
    last_sent_at: dt.datetime | None
    replied_at: dt.datetime | None
    last_error: str | None


def record(conn: psycopg.Connection, entries: list[NewEntry]) -> None:
    """Add these (МО, uniqueId, version) rows; those the ledger holds already are left as they are."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO iemk.ledger (mo_oid, unique_id, version, document_id, kind_code, signed_at, content_hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(e.mo_oid, e.unique_id, e.version, e.document_id, e.kind_code, e.signed_at, e.content_hash)
             for e in entries],
        )


def ids_signed_in_or_open(conn: psycopg.Connection, mo_oid: str, start: dt.datetime, end: dt.datetime) -> list[int]:
    """The МО's rows signed in [start, end), plus older ones not final yet, in signing order."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM iemk.ledger WHERE mo_oid = %s AND signed_at < %s"
        " AND (signed_at >= %s OR state = ANY(%s)) ORDER BY signed_at, id",
        (mo_oid, end, start, sorted(OPEN)),
    )]


def ids_of_documents(conn: psycopg.Connection, mo_oid: str, document_ids: list[int]) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT id FROM iemk.ledger WHERE mo_oid = %s AND document_id = ANY(%s) ORDER BY id", (mo_oid, document_ids))]


def ids_of_document(conn: psycopg.Connection, document_id: int) -> list[int]:
    """Every ledger row (version) of one МИС document."""
    return [r[0] for r in conn.execute("SELECT id FROM iemk.ledger WHERE document_id = %s", (document_id,))]


def history(conn: psycopg.Connection, document_id: int) -> list[History]:
    """The ledger rows of one МИС document, by version."""
    return [History(*r) for r in conn.execute(
        "SELECT state, attempts, message_id, last_sent_at, replied_at, last_error FROM iemk.ledger"
        " WHERE document_id = %s ORDER BY version", (document_id,))]


def ids_in_states(conn: psycopg.Connection, ledger_ids: list[int], states: Iterable[State]) -> list[int]:
    """Those of ``ledger_ids`` in one of ``states``, by id."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM iemk.ledger WHERE id = ANY(%s) AND state = ANY(%s) ORDER BY id",
        (ledger_ids, [s.value for s in states]))]


def ids_sent_since(conn: psycopg.Connection, ledger_ids: list[int], since: dt.datetime) -> list[int]:
    """Those of ``ledger_ids`` awaiting an answer whose last POST went out at or after ``since``, by id."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM iemk.ledger WHERE id = ANY(%s) AND state = 'sent' AND last_sent_at >= %s ORDER BY id",
        (ledger_ids, since))]


def state_counts(conn: psycopg.Connection, ledger_ids: list[int]) -> dict[str, int]:
    return {state: n for state, n in conn.execute(
        "SELECT state, count(*) FROM iemk.ledger WHERE id = ANY(%s) GROUP BY state ORDER BY state", (ledger_ids,))}


def resend_round(conn: psycopg.Connection, ledger_id: int) -> int:
    row = conn.execute("SELECT resend_round FROM iemk.ledger WHERE id = %s", (ledger_id,)).fetchone()
    return row[0] if row else 0


def record_attempt(conn: psycopg.Connection, ledger_id: int, message_id: str) -> None:
    """One more POST of this row went out under ``message_id``."""
    conn.execute(
        "UPDATE iemk.ledger SET attempts = attempts + 1, message_id = %s, last_sent_at = now(),"
        " first_sent_at = coalesce(first_sent_at, now()) WHERE id = %s",
        (message_id, ledger_id),
    )


def note_waiting(conn: psycopg.Connection, ledger_id: int, text: str) -> None:
    """Why a valid row was not sent this time (the state stays)."""
    conn.execute("UPDATE iemk.ledger SET last_error = %s, updated_at = now() WHERE id = %s AND state = 'valid'",
                 (text, ledger_id))


def note_transient(conn: psycopg.Connection, ledger_id: int, error: str, error_code: str) -> None:
    """A failed attempt that will be repeated: the error is recorded, the state stays."""
    conn.execute("UPDATE iemk.ledger SET last_error = %s, error_code = %s, updated_at = now() WHERE id = %s",
                 (statuses.clip(error), _known(error_code), ledger_id))


def note_error(conn: psycopg.Connection, ledger_id: int, text: str) -> None:
    """Only the last error's text (e.g. an answer that could not be read); nothing else changes."""
    conn.execute("UPDATE iemk.ledger SET last_error = %s WHERE id = %s", (text, ledger_id))


# --- the backoff ladder and the rounds (issue 11) ------------------------------------------------------

@dataclass(frozen=True)
class LadderPosition:
    """Where a document stands on the backoff ladder: steps used since the first try of the sequence."""
    step: int
    since: dt.datetime | None         # the first try of this sequence (None: nothing failed yet)
    last_sent_at: dt.datetime | None


def ladder_position(conn: psycopg.Connection, ledger_id: int) -> LadderPosition:
    row = conn.execute("SELECT retry_step, retry_since, last_sent_at FROM iemk.ledger WHERE id = %s",
                       (ledger_id,)).fetchone()
    return LadderPosition(*row) if row else LadderPosition(0, None, None)


def climb_ladder(conn: psycopg.Connection, ledger_id: int, delay: dt.timedelta | None, error: str,
                 error_code: str) -> None:
    """One more ladder step: the error is recorded, the state stays, and the next try waits ``delay`` from now
    (None: due at once). The sequence's first try is remembered for the final message's dates."""
    conn.execute(
        "UPDATE iemk.ledger SET retry_step = retry_step + 1,"
        " retry_since = coalesce(retry_since, last_sent_at, now()),"
        " next_attempt_at = now() + %s, last_error = %s, error_code = %s, updated_at = now() WHERE id = %s",
        (delay or dt.timedelta(0), statuses.clip(error), _known(error_code), ledger_id))


@dataclass(frozen=True)
class Unanswered:
    """A document sent whose asynchronous answer has not come."""
    ledger_id: int
    unique_id: str
    last_sent_at: dt.datetime


def sent_unanswered_before(conn: psycopg.Connection, mo_oid: str, cutoff: dt.datetime) -> list[Unanswered]:
    """The МО's documents sent before ``cutoff`` with no answer in the inbox (an answer received but not applied
    yet is not lost), oldest first."""
    return [Unanswered(*r) for r in conn.execute(
        "SELECT l.id, l.unique_id, l.last_sent_at FROM iemk.ledger l WHERE l.mo_oid = %s AND l.state = 'sent'"
        " AND l.last_sent_at < %s AND l.message_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM iemk.inbox i WHERE i.relates_to = l.message_id)"
        " ORDER BY l.last_sent_at, l.id", (mo_oid, cutoff))]


def failed_in_transport_since(conn: psycopg.Connection, mo_oid: str, since: dt.datetime) -> list[Unanswered]:
    """The МО's documents given up after transport errors since ``since`` whose last POST went out: ИЭМК may hold
    them all the same (the request arrived, only its answer did not), oldest first."""
    return [Unanswered(*r) for r in conn.execute(
        "SELECT id, unique_id, last_sent_at FROM iemk.ledger WHERE mo_oid = %s AND state = 'failed'"
        " AND error_code = %s AND updated_at >= %s AND last_sent_at IS NOT NULL ORDER BY last_sent_at, id",
        (mo_oid, errors.TRANSPORT.code, since))]


def ended_ids(conn: psycopg.Connection, mo_oid: str, states: Iterable[State], *, code: str | None = None,
              start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[int]:
    """The МО's rows ended in one of ``states`` (of one error code, signed in [start, end) when given), by id."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM iemk.ledger WHERE mo_oid = %s AND state = ANY(%s)"
        " AND (%s::text IS NULL OR error_code = %s)"
        " AND (%s::timestamptz IS NULL OR signed_at >= %s) AND (%s::timestamptz IS NULL OR signed_at < %s)"
        " ORDER BY id",
        (mo_oid, [s.value for s in states], code, code, start, start, end, end))]


@dataclass(frozen=True)
class Round:
    """One finished round of a document: what it ended in, and why the next one began."""
    round: int
    message_id: str | None
    state: str
    error_code: str | None
    last_error: str | None
    attempts: int
    first_sent_at: dt.datetime | None
    last_sent_at: dt.datetime | None
    ended_at: dt.datetime
    next_reason: str | None


def rounds(conn: psycopg.Connection, ledger_id: int) -> list[Round]:
    """The finished rounds of one ledger row, oldest first (the current round is the row itself)."""
    return [Round(*r) for r in conn.execute(
        "SELECT round, message_id, state, error_code, last_error, attempts, first_sent_at, last_sent_at, ended_at,"
        " next_reason FROM iemk.ledger_round WHERE ledger_id = %s ORDER BY round", (ledger_id,))]


def last_sent_of(conn: psycopg.Connection, ledger_ids: list[int]) -> tuple[dt.datetime | None, dt.datetime]:
    """(the latest POST among the rows of ``ledger_ids`` awaiting an answer, the database's now): the reply wait
    counts its timeout from the former, on the one clock that stamped it."""
    row = conn.execute("SELECT max(last_sent_at) FILTER (WHERE state = 'sent'), now() FROM iemk.ledger"
                       " WHERE id = ANY(%s)", (ledger_ids,)).fetchone()
    return (row[0], row[1]) if row else (None, dt.datetime.now(dt.UTC))


def note_unanswered(conn: psycopg.Connection, ledger_ids: list[int], text: str) -> list[int]:
    """Say on the rows of ``ledger_ids`` still awaiting an answer that it did not come in time (their state stays
    'sent': the lost-answer path takes them up); returns those rows, by id."""
    return [r[0] for r in conn.execute(
        "UPDATE iemk.ledger SET last_error = %s, error_code = %s, updated_at = now()"
        " WHERE id = ANY(%s) AND state = 'sent' RETURNING id",
        (statuses.clip(text), errors.NO_ANSWER.code, ledger_ids)).fetchall()]
