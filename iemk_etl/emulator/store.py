"""The emulator's own state, in its own PostgreSQL schema ``emulator``: it survives a restart.

Messages received (with their verdicts, for the inspector and for dropping repeats), patients, documents, and the
asynchronous replies still to deliver. ``reset()`` clears it (``iemk-etl emulator reset``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass

import psycopg

from iemk_etl import kinds
from iemk_etl.protocol.hl7v3.common import OtherId, PatientRecord
from iemk_etl.protocol.hl7v3.pdq import PatientQuery
from iemk_etl.protocol.xds.common import coded, sha1_hex
from iemk_etl.protocol.xds.query import DocumentEntry, DocumentQuery
from iemk_etl.store import db

MIGRATIONS = "iemk_etl.emulator.migrations"
SCHEMA = "emulator"

_PATIENT_SELECT = ("SELECT mo_oid, local_id, family, given, patronymic, gender, birth_time, other_ids"
                   " FROM emulator.patient")


def _entry(prefix: str, unique_id: str, patient_id: str, kind_code: int, created: dt.datetime | None, status: str,
           sha1: str, size: int, entry_uuid: str, doc_type: int | None, class_code: str | None,
           format_code: str | None) -> DocumentEntry:
    """An ITI-18 entry with the metadata as submitted; a document stored without them is answered in the legacy
    layout (its type in classCode by НСИ 1522, its kind in formatCode by НСИ 1520)."""
    entry = DocumentEntry(unique_id, patient_id, kind_code, created, prefix + status, sha1, size, entry_uuid)
    return dataclasses.replace(
        entry, class_code=class_code or (coded(str(doc_type), kinds.NSI_1522) if doc_type is not None else ""),
        format_code=format_code or coded(str(kind_code), kinds.NSI_1520))


def _patient(row: tuple) -> PatientRecord:
    *fields, other = row
    return PatientRecord(*fields, other_ids=tuple(OtherId(*o) for o in other))


_TABLES = ("emulator.reply", "emulator.submission", "emulator.document", "emulator.message", "emulator.patient")


@dataclass(frozen=True)
class Submission:
    message_id: str
    reply_to: str
    unique_id: str | None
    patient_id: str | None
    kind_code: int | None
    author: str | None
    data: bytes | None
    replaces: str | None = None
    metadata: dict[str, str | None] | None = None   # submit.ReceivedDocument.metadata(); None: stored before it


@dataclass(frozen=True)
class Registered:
    """What the registry keeps of a document besides its bytes (IHE XDS DocumentEntry)."""

    entry_uuid: str
    doc_type: int | None       # НСИ 1522, from the document's ClinicalDocument/code
    class_code: str | None     # code^^scheme as submitted
    format_code: str | None


class Store:
    """A small pool of connections: request threads come and go, connections stay."""

    def __init__(self, dsn: str, size: int = 8) -> None:
        self.dsn = dsn
        self._pool = db.ConnectionPool(dsn, size, application_name="iemk-emulator")
        db.migrate(dsn, package=MIGRATIONS, schema=SCHEMA)  # the emulator is a dev tool: it sets itself up
        self._complete_documents()

    def _complete_documents(self) -> None:
        """Documents stored without the XDS metadata (before migration 002, or written into the table by hand) get
        their SHA-1 ``hash``, ``size``, entryUUID and НСИ 1522 type (from their kind), once."""
        with self.connection() as conn:
            rows = conn.execute("SELECT unique_id, data, kind_code FROM emulator.document"
                                " WHERE sha1 IS NULL OR size IS NULL OR entry_uuid IS NULL").fetchall()
            for unique_id, data, kind_code in rows:
                kind = kinds.KINDS.get(kind_code)
                conn.execute("UPDATE emulator.document SET sha1 = %s, size = %s,"
                             " entry_uuid = coalesce(entry_uuid, %s), doc_type = coalesce(doc_type, %s)"
                             " WHERE unique_id = %s",
                             (sha1_hex(bytes(data)), len(bytes(data)), f"urn:uuid:{uuid.uuid4()}",
                              kind.doc_type if kind else None, unique_id))

    def connection(self) -> AbstractContextManager[psycopg.Connection]:
        """A pooled connection in autocommit: a one-statement call costs one round trip; callers that need
        several statements together open ``conn.transaction()`` themselves."""
        return self._pool.connection()

    def close(self) -> None:
        self._pool.close()

    def reset(self) -> None:
        with self.connection() as conn, conn.transaction():
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

    def accept_submission(self, sub: Submission, client_id: str | None, action: str, delay: float) -> bool:
        """Record the message and queue its reply in one statement; False for a repeated MessageID.

        Only a message that was taken counts as seen: one refused synchronously (a fault: unknown client, a bad
        signature) was not processed, so the same MessageID sent again once the sender fixed its side is new."""
        with self.connection() as conn, conn.transaction():
            conn.execute("DELETE FROM emulator.message WHERE message_id = %s AND verdict = 'fault'", (sub.message_id,))
            row = conn.execute(
                "WITH m AS (INSERT INTO emulator.message (message_id, service, action, client_id, verdict)"
                "   VALUES (%(id)s, 'repository', %(action)s, %(client)s, 'accepted') ON CONFLICT (message_id)"
                "   DO UPDATE SET repeats = emulator.message.repeats + 1 RETURNING (xmax = 0) AS new),"
                " s AS (INSERT INTO emulator.submission (message_id, reply_to, unique_id, patient_id, kind_code,"
                "   author, data, replaces, metadata) SELECT %(id)s, %(reply_to)s, %(unique)s, %(patient)s, %(kind)s,"
                "   %(author)s, %(data)s, %(replaces)s, %(metadata)s WHERE (SELECT new FROM m))"
                " INSERT INTO emulator.reply (relates_to, reply_to, due_at)"
                " SELECT %(id)s, %(reply_to)s, clock_timestamp() + %(delay)s * interval '1 second'"
                " WHERE (SELECT new FROM m) RETURNING 1",
                {"id": sub.message_id, "action": action, "client": client_id, "reply_to": sub.reply_to,
                 "unique": sub.unique_id, "patient": sub.patient_id, "kind": sub.kind_code, "author": sub.author,
                 "data": sub.data, "replaces": sub.replaces, "delay": delay,
                 "metadata": None if sub.metadata is None else json.dumps(sub.metadata)}).fetchone()
        return row is not None

    def due_reply(self) -> tuple[int, Submission, bytes | None, int] | None:
        """Claim the next reply that is due: (reply id, its submission, body if computed, attempts).

        Safe with concurrent senders (threads or processes): SKIP LOCKED passes over a reply another sender is
        claiming, and a claimed reply is leased (due a minute later) in the same committed statement, so no other
        sender sees it due until its sender has recorded the outcome or died (then it goes out again: after a
        restart too). One statement claims the reply and reads its submission."""
        with self.connection() as conn:
            row = conn.execute(
                "WITH claimed AS ("
                "   UPDATE emulator.reply r SET due_at = clock_timestamp() + interval '60 seconds'"
                "   WHERE r.id = (SELECT id FROM emulator.reply WHERE state = 'pending'"
                "                 AND due_at <= clock_timestamp() ORDER BY due_at FOR UPDATE SKIP LOCKED LIMIT 1)"
                "   RETURNING r.id, r.relates_to, r.body, r.attempts)"
                " SELECT c.id, c.body, c.attempts, s.message_id, s.reply_to, s.unique_id, s.patient_id, s.kind_code,"
                " s.author, s.data, s.replaces, s.metadata"
                " FROM claimed c JOIN emulator.submission s ON s.message_id = c.relates_to").fetchone()
        if row is None:
            return None
        reply_id, body, attempts, *s = row
        data = Submission(*s[:6], bytes(s[6]) if s[6] is not None else None, s[7], s[8])
        return reply_id, data, bytes(body) if body is not None else None, attempts

    def next_due_in(self) -> float | None:
        with self.connection() as conn:
            row = conn.execute("SELECT extract(epoch FROM min(due_at) - clock_timestamp()) FROM emulator.reply"
                               " WHERE state = 'pending'").fetchone()
        return None if row is None or row[0] is None else max(0.0, float(row[0]))

    def reply_lost(self, reply_id: int) -> None:
        with self.connection() as conn:
            conn.execute("UPDATE emulator.reply SET state = 'lost', last_error = 'injected fault: lost reply'"
                         " WHERE id = %s", (reply_id,))

    def record_injected(self, operation: str, kind: str) -> None:
        """An injected fault, shown by the inspector; a synthetic id keeps the request's own MessageID unused."""
        with self.connection() as conn:
            conn.execute("INSERT INTO emulator.message (message_id, service, action, verdict, detail)"
                         " VALUES ('injected:' || gen_random_uuid(), %s, NULL, 'injected', %s)", (operation, kind))

    def injected_by_kind(self) -> dict[tuple[str, str], int]:
        """Injected faults counted by (operation, kind): every kind, synchronous or not, is recorded once per draw."""
        with self.connection() as conn:
            rows = conn.execute("SELECT service, detail, count(*) FROM emulator.message WHERE verdict = 'injected'"
                                " GROUP BY service, detail ORDER BY service, detail").fetchall()
        return {(service, kind): n for service, kind, n in rows}

    def save_reply_body(self, reply_id: int, body: bytes, verdict: tuple[str, str, str | None] | None = None) -> None:
        """Keep the reply's body (a retry, after a restart too, sends these same bytes); with ``verdict`` —
        (MessageID, verdict, detail) of its submission — recorded in the same commit."""
        with self.connection() as conn, conn.transaction():
            conn.execute("UPDATE emulator.reply SET body = %s WHERE id = %s", (body, reply_id))
            if verdict is not None:
                message_id, outcome, detail = verdict
                conn.execute("UPDATE emulator.message SET verdict = %s, detail = %s WHERE message_id = %s",
                             (outcome, detail, message_id))

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

    def store_document(self, sub: Submission, unique_id: str, mo_oid: str | None, content_hash: str,
                       creation_time: dt.datetime | None, registered: Registered | None = None) -> bool:
        """Register a document (deprecating the one it replaces); False if that uniqueId is taken.

        ``sub.kind_code`` is the kind the document is of; ``registered`` its XDS metadata (None: an entryUUID is
        made here and the coded values are answered in the legacy layout)."""
        assert sub.data is not None
        r = registered or Registered(f"urn:uuid:{uuid.uuid4()}", None, None, None)
        with self.connection() as conn, conn.transaction():
            row = conn.execute(
                "INSERT INTO emulator.document (unique_id, patient_id, mo_oid, kind_code, content_hash, data,"
                " message_id, creation_time, replaces, entry_uuid, sha1, size, doc_type, class_code, format_code)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (unique_id) DO NOTHING RETURNING 1",
                (unique_id, sub.patient_id or "", mo_oid, sub.kind_code, content_hash, sub.data, sub.message_id,
                 creation_time, sub.replaces, r.entry_uuid, sha1_hex(sub.data), len(sub.data), r.doc_type,
                 r.class_code, r.format_code)).fetchone()
            if row is not None and sub.replaces:
                conn.execute("UPDATE emulator.document SET status = 'Deprecated' WHERE unique_id = %s",
                             (sub.replaces,))
        return row is not None

    def find_documents(self, q: DocumentQuery) -> list[DocumentEntry]:
        self._complete_documents()
        where, args = [], []
        if q.unique_ids:
            where.append("unique_id = ANY(%s)")
            args.append(list(q.unique_ids))
        for clause, value in (("patient_id = %s", q.patient_id), ("mo_oid = %s", q.mo_oid),
                              ("kind_code = %s", q.kind_code), ("doc_type = %s", q.doc_type),
                              ("creation_time >= %s", q.created_from),
                              ("creation_time < %s", q.created_to)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if q.statuses:
            where.append("status = ANY(%s)")
            args.append([s.rsplit(":", 1)[-1] for s in q.statuses])
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT unique_id, patient_id, kind_code, creation_time, status, sha1, size, entry_uuid, doc_type,"
                " class_code, format_code FROM emulator.document WHERE " + (" AND ".join(where) or "true")
                + " ORDER BY creation_time, unique_id",
                args).fetchall()  # the fragments above are constants; values are parameters
        prefix = "urn:oasis:names:tc:ebxml-regrep:StatusType:"
        return [_entry(prefix, *row) for row in rows]

    def documents_data(self, unique_ids: list[str]) -> dict[str, bytes]:
        with self.connection() as conn:
            rows = conn.execute("SELECT unique_id, data FROM emulator.document WHERE unique_id = ANY(%s)",
                                (unique_ids,)).fetchall()
        return {u: bytes(d) for u, d in rows}

    # -- patients ------------------------------------------------------------------------------------------

    def patient(self, mo_oid: str, local_id: str) -> PatientRecord | None:
        with self.connection() as conn:
            row = conn.execute(_PATIENT_SELECT + " WHERE mo_oid = %s AND local_id = %s", (mo_oid, local_id)).fetchone()
        return _patient(row) if row else None

    def save_patient(self, p: PatientRecord) -> None:
        other = json.dumps([[o.type_code, o.number, o.series] for o in p.other_ids], ensure_ascii=False)
        with self.connection() as conn:
            conn.execute(
                "INSERT INTO emulator.patient (mo_oid, local_id, family, given, patronymic, gender, birth_time, snils,"
                " other_ids) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (mo_oid, local_id) DO UPDATE SET"
                " family = EXCLUDED.family, given = EXCLUDED.given, patronymic = EXCLUDED.patronymic,"
                " gender = EXCLUDED.gender, birth_time = EXCLUDED.birth_time, snils = EXCLUDED.snils,"
                " other_ids = EXCLUDED.other_ids, revision = emulator.patient.revision + 1,"
                " updated_at = clock_timestamp()",
                (p.mo_oid, p.local_id, p.family, p.given, p.patronymic, p.gender, p.birth_time, p.snils, other))

    def find_patients(self, q: PatientQuery) -> list[PatientRecord]:
        where, args = [], []
        if q.local_id:
            where.append("mo_oid = %s AND local_id = %s")
            args += list(q.local_id)
        if q.snils:
            where.append("snils = %s")
            args.append(q.snils)
        if q.family:
            where.append("lower(family) = lower(%s)")
            args.append(q.family)
        if q.given:
            where.append("lower(given) = lower(%s)")
            args.append(q.given)
        if q.birth_date:
            where.append("left(birth_time, 8) = %s")
            args.append(q.birth_date[:8])
        if not where:
            return []
        with self.connection() as conn:
            rows = conn.execute(_PATIENT_SELECT + " WHERE " + " AND ".join(where) + " ORDER BY mo_oid, local_id"
                                " LIMIT 100", args).fetchall()  # the fragments above are constants
        return [_patient(r) for r in rows]

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
                " (SELECT coalesce(sum(repeats), 0)::int FROM emulator.message),"
                " (SELECT count(*) FROM emulator.message WHERE verdict = 'injected'),"
                " (SELECT count(*) FROM emulator.reply WHERE state = 'lost')").fetchone()
        names = ("received", "faults", "success", "failure", "replies_delivered", "replies_undelivered", "stored",
                 "duplicate_deliveries", "injected_faults", "replies_lost")
        return dict(zip(names, row or (0,) * len(names), strict=True))

