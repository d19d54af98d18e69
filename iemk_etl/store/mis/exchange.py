"""Where the МИС meets the integration's own rows: statements joining iemk.* to the МИС documents and patients.

Each of these needs both sides in one statement (a row lock, an outbox sweep in one INSERT … SELECT, the
patients' demographics hash computed over mis.patient), so it lives here, with the rest of the МИС schema,
and its name says which integration rows it joins.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class OutboxDocument:
    """A signed document in the outbox, as the ledger records it."""
    document_id: int
    local_uid: str
    version: int
    kind_code: int
    signed_at: dt.datetime
    content_hash: str            # sha256 of the signed bytes, hex


@dataclass(frozen=True)
class QueuedContent:
    ledger_id: int
    kind_code: int
    content_hash: str
    cda: bytes


@dataclass(frozen=True)
class QueuedSignatures:
    """A queued document's signatures as the МИС stores them, and whose they should be."""
    ledger_id: int
    signature: bytes | None      # the author's detached CMS over the document's bytes
    org_signature: bytes | None  # the МО's, where the kind requires it
    author_snils: str | None
    author_family: str
    author_given: str
    mo_ogrn: str | None


@dataclass(frozen=True)
class SubmissionRow:
    """What a send of one ledger row needs from the ledger and the МИС."""
    mo_oid: str
    unique_id: str
    version: int
    content_hash: str
    resend_round: int
    attempts: int
    kind_code: int
    created_at: dt.datetime
    cda: bytes
    mo_name: str
    patient_local_id: str
    author_snils: str
    author_family: str
    author_given: str
    author_patronymic: str | None
    replaces: str | None         # uniqueId of the newest earlier version ИЭМК stored (XDS RPLC)


@dataclass(frozen=True)
class PatientToFeed:
    patient_id: int
    demographics_hash: str
    known: bool                  # ИЭМК holds an earlier state of this patient (a revise, not an add)
    local_id: str
    family: str
    given: str
    patronymic: str | None
    sex: int                     # НСИ 1040
    birth_date: dt.date
    snils: str | None
    oms_policy: str | None
    id_doc_series: str | None
    id_doc_number: str | None
    mo_name: str
    phone: str | None = None
    id_doc_kind: int | None = None       # НСИ 1.2.643.5.1.13.2.1.1.498 (14 = паспорт гражданина РФ)
    id_doc_issued_by: str | None = None
    oms_insurer_code: str | None = None  # the СМО, registry 1.2.643.5.1.13.2.1.1.635
    oms_insurer: str | None = None       # its name
    mo_phone: str | None = None


@dataclass(frozen=True)
class LedgerDocument:
    ledger_id: int
    unique_id: str
    state: str
    content_hash: str
    replaced: bool = False       # a later version of the same МИС document is stored: this one is superseded


@dataclass(frozen=True)
class SentCopy:
    content_hash: str
    signature: bytes | None      # the author's signature stored in the МИС


# --- the outbox (procedure 1) ------------------------------------------------------------------------

_SWEEP = (
    "INSERT INTO iemk.outbox (mo_oid, item_type, document_id, doc_version, patient_id, event_at)"
    " SELECT mo_oid, 'document', id, version, patient_id, signed_at FROM mis.semd_document"
    " WHERE mo_oid = %s AND signed_at IS NOT NULL"
)
_OUTBOX = (
    "SELECT o.document_id, d.local_uid, d.version, d.kind_code, d.signed_at, encode(sha256(d.cda), 'hex')"
    " FROM iemk.outbox o JOIN mis.semd_document d ON d.id = o.document_id AND d.version = o.doc_version"
    " WHERE o.mo_oid = %s AND o.item_type = 'document'"
)


def sweep_signed_into_outbox(conn: psycopg.Connection, mo_oid: str, start: dt.datetime, end: dt.datetime) -> int:
    """Put the МО's documents signed in [start, end) into iemk.outbox, as procedure 1 would have; rows added."""
    return conn.execute(_SWEEP + " AND signed_at >= %s AND signed_at < %s ON CONFLICT DO NOTHING",
                        (mo_oid, start, end)).rowcount


def sweep_documents_into_outbox(conn: psycopg.Connection, mo_oid: str, document_ids: list[int]) -> int:
    """The same for these documents (the signed ones among them); rows added."""
    return conn.execute(_SWEEP + " AND id = ANY(%s) ON CONFLICT DO NOTHING", (mo_oid, document_ids)).rowcount


def outbox_documents_in_period(conn: psycopg.Connection, mo_oid: str, start: dt.datetime,
                               end: dt.datetime) -> list[OutboxDocument]:
    """The МО's outbox documents whose event falls in [start, end), with their МИС data."""
    rows = conn.execute(_OUTBOX + " AND o.event_at >= %s AND o.event_at < %s", (mo_oid, start, end)).fetchall()
    return [OutboxDocument(*r) for r in rows]


def outbox_documents(conn: psycopg.Connection, mo_oid: str, document_ids: list[int]) -> list[OutboxDocument]:
    rows = conn.execute(_OUTBOX + " AND o.document_id = ANY(%s)", (mo_oid, document_ids)).fetchall()
    return [OutboxDocument(*r) for r in rows]


# --- ledger rows with their МИС documents ------------------------------------------------------------

# A document up to this size comes with its row (``_SMALL_CDA``: one statement for a whole chunk); a larger one is
# read by ``read_cda`` in slices of this size.
_CDA_SLICE = 4 * 1024 * 1024
_SMALL_CDA = f"CASE WHEN octet_length(d.cda) <= {_CDA_SLICE} THEN d.cda END"


def ledger_queued_content(conn: psycopg.Connection, ledger_ids: list[int]) -> list[QueuedContent]:
    """The bytes of the ledger rows among ``ledger_ids`` still waiting for format control."""
    rows = conn.cursor(binary=True).execute(
        f"SELECT l.id, l.kind_code, l.content_hash, d.id, octet_length(d.cda), {_SMALL_CDA} FROM iemk.ledger l"  # noqa: S608 - a constant
        " JOIN mis.semd_document d ON d.id = l.document_id WHERE l.id = ANY(%s) AND l.state = 'queued'",
        (ledger_ids,),
    ).fetchall()
    return [QueuedContent(lid, kind, digest, read_cda(conn, document_id, size, small))
            for lid, kind, digest, document_id, size, small in rows]


def read_cda(conn: psycopg.Connection, document_id: int, size: int | None,
             small: bytes | memoryview | None = None) -> bytes:
    """A МИС document's bytes (``size`` of them, its octet_length): ``small`` when its row brought them, else
    streamed a slice at a time into the one bytes object returned. Fetched whole, a 50 MB bytea is in libpq's input
    buffer, in its result and in the Python bytes at once (and as hex, twice over, unless fetched in binary);
    sliced, only the returned bytes are whole. One statement reads every slice (row by row: psycopg's stream), so
    they all come from one snapshot."""
    if small is not None:
        return bytes(small)
    if size is None or size <= _CDA_SLICE:
        row = conn.cursor(binary=True).execute("SELECT cda FROM mis.semd_document WHERE id = %s",
                                               (document_id,)).fetchone()
        return bytes(row[0]) if row is not None else b""
    # Preallocated and written in place: getvalue() hands back this very buffer (no copy) once it is full.
    out = io.BytesIO(bytes(size))
    slices = conn.cursor(binary=True).stream(
        "SELECT substring(d.cda FROM s FOR %(n)s::int), octet_length(d.cda) FROM mis.semd_document d,"
        " generate_series(1, %(size)s::int, %(n)s::int) AS s WHERE d.id = %(id)s ORDER BY s",
        {"n": _CDA_SLICE, "size": size, "id": document_id})
    for part, whole in slices:
        if whole != size:
            raise RuntimeError(f"МИС document {document_id} changed while it was read")
        out.write(part)
    if out.tell() != size:
        raise RuntimeError(f"МИС document {document_id} changed while it was read")
    return out.getvalue()


def ledger_queued_signatures(conn: psycopg.Connection, ledger_ids: list[int]) -> dict[int, QueuedSignatures]:
    """The stored signatures (and the author and МО they should be by) of the rows among ``ledger_ids`` still
    waiting for format control, by ledger id."""
    rows = conn.execute(
        "SELECT l.id, d.signature, d.org_signature, s.snils, s.family, s.given, m.ogrn FROM iemk.ledger l"
        " JOIN mis.semd_document d ON d.id = l.document_id JOIN mis.staff s ON s.id = d.author_id"
        " JOIN mis.mo m ON m.oid = d.mo_oid WHERE l.id = ANY(%s) AND l.state = 'queued'",
        (ledger_ids,),
    ).fetchall()
    return {r[0]: QueuedSignatures(r[0], _bytes(r[1]), _bytes(r[2]), r[3], r[4], r[5], r[6]) for r in rows}


def _bytes(value: bytes | memoryview | None) -> bytes | None:
    return None if value is None else bytes(value)


_SUBMISSION = """
SELECT l.mo_oid, l.unique_id, l.version, l.content_hash, l.resend_round, l.attempts, l.kind_code, d.created_at,
       d.id, octet_length(d.cda), """ + _SMALL_CDA + """, m.name, p.local_id, s.snils, s.family, s.given, s.patronymic,
       -- a later version replaces (XDS RPLC) the newest earlier one ИЭМК stored
       (SELECT e.unique_id FROM iemk.ledger e JOIN mis.semd_document ed ON ed.id = e.document_id
         WHERE ed.mo_oid = d.mo_oid AND ed.local_uid = d.local_uid AND ed.version < d.version AND e.state = 'stored'
         ORDER BY ed.version DESC LIMIT 1) AS replaces
FROM iemk.ledger l
JOIN mis.semd_document d ON d.id = l.document_id
JOIN mis.mo m ON m.oid = l.mo_oid
JOIN mis.patient p ON p.id = d.patient_id
JOIN mis.staff s ON s.id = d.author_id
WHERE l.id = %s AND l.state = 'valid'
  -- the backoff ladder: a row whose next try is due later waits (issue 11)
  AND (l.next_attempt_at IS NULL OR l.next_attempt_at <= now())
FOR UPDATE OF l SKIP LOCKED
"""


def lock_ledger_submission(conn: psycopg.Connection, ledger_id: int) -> SubmissionRow | None:
    """A valid ledger row with what its submission needs, its ledger row locked for the caller's transaction;
    None when it is not valid (any more), its next try is not due yet, or a concurrent run holds it."""
    row = conn.execute(_SUBMISSION, (ledger_id,)).fetchone()
    if row is None:
        return None
    values = list(row)
    values[8:11] = [read_cda(conn, *values[8:11])]       # the document's id, size and small bytes: its bytes
    return SubmissionRow(*values)


def ledger_documents_created(conn: psycopg.Connection, mo_oid: str, start: dt.datetime,
                             end: dt.datetime) -> list[LedgerDocument]:
    """The МО's ledger rows whose МИС document was created in [start, end), each saying whether a later stored
    version replaced it."""
    rows = conn.execute(
        "SELECT l.id, l.unique_id, l.state, l.content_hash,"
        " EXISTS (SELECT 1 FROM iemk.ledger e JOIN mis.semd_document ed ON ed.id = e.document_id"
        "         WHERE ed.mo_oid = d.mo_oid AND ed.local_uid = d.local_uid AND ed.version > d.version"
        "           AND e.state = 'stored')"
        " FROM iemk.ledger l JOIN mis.semd_document d ON d.id = l.document_id"
        " WHERE l.mo_oid = %s AND d.created_at >= %s AND d.created_at < %s", (mo_oid, start, end)).fetchall()
    return [LedgerDocument(*r) for r in rows]


def ledger_sent_copy(conn: psycopg.Connection, unique_id: str) -> SentCopy | None:
    """The hash we sent under this uniqueId (newest version) and the МИС's stored author signature."""
    row = conn.execute("SELECT l.content_hash, d.signature FROM iemk.ledger l JOIN mis.semd_document d"
                       " ON d.id = l.document_id WHERE l.unique_id = %s ORDER BY l.version DESC LIMIT 1",
                       (unique_id,)).fetchone()
    if row is None:
        return None
    return SentCopy(row[0], bytes(row[1]) if row[1] is not None else None)


def documents_with_ledger(conn: psycopg.Connection, mo: str | None = None, start: dt.datetime | None = None,
                          end: dt.datetime | None = None) -> tuple[list[str], list[tuple]]:
    """Every МИС document (of one МО, by OID or code; created in [start, end) when given) with its ledger row:
    (column names, rows)."""
    cur = conn.execute(
        "SELECT m.code AS mo, m.oid AS mo_oid, d.id AS document_id, d.local_uid, d.version, d.kind_code,"
        " d.signed_at, d.status, l.state, l.attempts, l.error_code"
        " FROM mis.semd_document d JOIN mis.mo m ON m.oid = d.mo_oid"
        " LEFT JOIN iemk.ledger l ON l.document_id = d.id AND l.version = d.version"
        " WHERE (%(mo)s::text IS NULL OR m.oid = %(mo)s OR m.code = %(mo)s)"
        " AND (%(start)s::timestamptz IS NULL OR d.created_at >= %(start)s)"
        " AND (%(end)s::timestamptz IS NULL OR d.created_at < %(end)s) ORDER BY m.code, d.id",
        {"mo": mo, "start": start, "end": end},
    )
    return [c.name for c in cur.description or []], cur.fetchall()


# --- patients (procedure 2) --------------------------------------------------------------------------

_PATIENTS_TO_FEED = """
WITH wanted AS (
    SELECT DISTINCT d.patient_id FROM iemk.ledger l JOIN mis.semd_document d ON d.id = l.document_id
    WHERE l.id = ANY(%(ids)s) AND l.state IN ('queued', 'valid')
    UNION
    SELECT o.patient_id FROM iemk.outbox o WHERE o.mo_oid = %(mo)s AND o.item_type = 'patient'
)
SELECT p.id, iemk.patient_demographics_hash(p), r.payload_hash IS NOT NULL,
       p.local_id, p.family, p.given, p.patronymic, p.sex, p.birth_date, p.snils, p.oms_policy,
       p.id_doc_series, p.id_doc_number, m.name, p.phone, p.id_doc_type_iemk, p.id_doc_issued_by,
       p.oms_insurer_code, p.oms_insurer, m.phone
FROM wanted w JOIN mis.patient p ON p.id = w.patient_id JOIN mis.mo m ON m.oid = p.mo_oid
LEFT JOIN iemk.patient_registration r ON r.patient_id = p.id
WHERE p.mo_oid = %(mo)s AND r.payload_hash IS DISTINCT FROM iemk.patient_demographics_hash(p)
  AND NOT EXISTS (SELECT 1 FROM iemk.patient_feed f WHERE f.patient_id = p.id
                  AND f.payload_hash = iemk.patient_demographics_hash(p) AND f.state IN ('rejected', 'failed'))
ORDER BY p.id
"""


def patients_to_feed(conn: psycopg.Connection, mo_oid: str, ledger_ids: list[int]) -> list[PatientToFeed]:
    """The МО's patients (of these ledger rows' open documents, or put in the outbox) whose current data ИЭМК
    does not hold, leaving out those whose current data it refused."""
    rows = conn.execute(_PATIENTS_TO_FEED, {"ids": ledger_ids, "mo": mo_oid}).fetchall()
    return [PatientToFeed(*r) for r in rows]


def ledger_documents_of_refused_patients(conn: psycopg.Connection,
                                         ledger_ids: list[int]) -> list[tuple[int, str | None]]:
    """(ledger id, the refusal's text) of open documents whose patient's current data ИЭМК refused."""
    rows = conn.execute(
        "SELECT l.id, f.ack_text FROM iemk.ledger l JOIN mis.semd_document d ON d.id = l.document_id"
        " JOIN mis.patient p ON p.id = d.patient_id"
        " JOIN iemk.patient_feed f ON f.patient_id = p.id AND f.payload_hash = iemk.patient_demographics_hash(p)"
        " WHERE l.id = ANY(%s) AND l.state IN ('queued', 'valid') AND f.state IN ('rejected', 'failed')",
        (ledger_ids,)).fetchall()
    return [(r[0], r[1]) for r in rows]


def ledger_patient_registered(conn: psycopg.Connection, ledger_id: int) -> bool:
    """Whether the current data of this ledger row's patient are registered in ИЭМК."""
    row = conn.execute(
        "SELECT 1 FROM iemk.ledger l JOIN mis.semd_document d ON d.id = l.document_id"
        " JOIN mis.patient p ON p.id = d.patient_id JOIN iemk.patient_registration r ON r.patient_id = p.id"
        " WHERE l.id = %s AND r.payload_hash = iemk.patient_demographics_hash(p)", (ledger_id,)).fetchone()
    return row is not None


def ledger_document_sizes(conn: psycopg.Connection, ledger_ids: list[int]) -> list[tuple[int, int, int]]:
    """(ledger id, patient id, bytes of the СЭМД) of the rows among ``ledger_ids``, a patient's rows together, each
    patient's in id order. Sizes come from the stored length: no document's bytes leave the database."""
    rows = conn.execute(
        "SELECT l.id, d.patient_id, octet_length(d.cda) FROM iemk.ledger l"
        " JOIN mis.semd_document d ON d.id = l.document_id WHERE l.id = ANY(%s)"
        " ORDER BY d.patient_id, l.id", (ledger_ids,)).fetchall()
    return [(r[0], r[1], r[2] or 0) for r in rows]
