"""«Получить документы»: form the period's СЭМД from the МИС records into mis.semd_document («Не подписан»).

Forming is idempotent per record: a record that already has its document (same kind, same source) gets no
second one, so the same period can be formed again at any time. Forming again does follow the МИС, though: a
document not yet signed is re-formed from the record as it is now (so fixing the data and forming again repairs
a «Ошибка: СЭМД не сформирован …»), while a signed one is left as signed and, if the record changed since, gets
its next version (versionNumber + 1, same setId, an id of its own), which the export sends as a replacement.
Whether the record changed is decided on the record itself (``record_hash`` of the builder's input, kept with the
document), never on re-rendered bytes: a new release whose builders write the same record differently must not
make every signed document of a re-formed period a new version.
A record that cannot make a valid document still gets its row, in status «Ошибка: …» with the reason, so nothing
disappears silently.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg

from iemk_etl import statuses
from iemk_etl.pipeline import guard
from iemk_etl.semd import FormingError, build, pdf
from iemk_etl.semd.model import Case
from iemk_etl.settings import DEFAULT_MIS_NUMBER
from iemk_etl.store.mis import documents
from iemk_etl.store.mis.clinical import Source, SourcedCase

log = logging.getLogger(__name__)


@dataclass
class FormReport:
    formed: dict[int, int] = field(default_factory=dict)     # kind → documents formed now
    document_ids: list[int] = field(default_factory=list)    # mis.semd_document ids formed now
    skipped: int = 0                                           # already formed earlier, unchanged
    refreshed: int = 0                                         # unsigned, re-formed from changed data
    new_versions: list[str] = field(default_factory=list)    # sources whose signed document got a next version
    errors: dict[str, str] = field(default_factory=dict)     # source → reason

    @property
    def total(self) -> int:
        return sum(self.formed.values())


def form_period(conn: psycopg.Connection, mo_oid: str, start: dt.datetime, end: dt.datetime,
                kinds: set[int] | None = None, *, mis_number: str = DEFAULT_MIS_NUMBER) -> FormReport:
    report = FormReport()
    source = Source(conn, mo_oid, mis_number)
    cases = iter(source.cases(start, end, kinds))
    while _form_batch(conn, mo_oid, cases, report):
        pass
    log.info("МО %s: formed %d documents (%d of them new versions), re-formed %d unsigned, %d already formed, "
             "%d could not be formed", mo_oid, report.total, len(report.new_versions), report.refreshed,
             report.skipped, len(report.errors))
    return report


# Records formed in one transaction, each in a savepoint of its own: a commit per document was a third of forming's
# time (a WAL flush each). What a crash takes back is re-formed by the next run (forming is idempotent).
BATCH_RECORDS = 50


def _form_batch(conn: psycopg.Connection, mo_oid: str, cases: Iterator[SourcedCase], report: FormReport) -> bool:
    """Form up to BATCH_RECORDS records and commit them; False when no record was left. A record that raises
    leaves the ones before it committed, as a transaction each did."""
    failure: BaseException | None = None
    formed_any = False
    with conn.transaction():
        for sourced in itertools.islice(cases, BATCH_RECORDS):
            formed_any = True
            try:
                with conn.transaction():
                    _form_one(conn, mo_oid, sourced, report)
            except BaseException as exc:        # re-raised once what is formed is committed
                failure = exc
                break
    if failure is not None:
        raise failure
    return formed_any


def record_hash(case: Case) -> str:
    """sha256 of the МИС record a document is formed from: the builder's input in a stable canonical form.

    The version being formed is left out (it is the document's, not the record's); times are compared as instants
    (UTC), so a session time zone never looks like a change."""
    unversioned = dataclasses.replace(case, context=dataclasses.replace(case.context, version=0))
    text = json.dumps(dataclasses.asdict(unversioned), sort_keys=True, ensure_ascii=False, default=_canonical,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: object) -> str:
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()      # attachments (PDF reports) by content
    return str(value)       # Decimal and the like: their exact text


def _form_one(conn: psycopg.Connection, mo_oid: str, sourced: SourcedCase, report: FormReport) -> None:
    case = sourced.case
    digest = record_hash(case)
    latest = documents.latest_formed(conn, mo_oid, case.kind, sourced.source)
    if latest is None:
        data, status = _build(sourced, 1, report)
        _count_formed(report, case.kind, _insert(conn, mo_oid, sourced, 1, data, status, digest), data)
        return
    if latest.signed:
        _after_signed(conn, mo_oid, sourced, latest, digest, report)
        return
    document_id, version, old, old_status = latest.id, latest.version, latest.cda, latest.status
    data, status = _build(sourced, version, report)
    if (data, status) == (old, old_status):
        if latest.source_hash != digest:
            documents.set_source_hash(conn, document_id, digest)
        report.skipped += 1
        return
    documents.replace_formed(conn, document_id, data, status, sourced.author_id, digest)
    if data and not old:
        _count_formed(report, case.kind, document_id, data)      # an error row the МИС data now make good
    elif data:
        report.refreshed += 1


def _after_signed(conn: psycopg.Connection, mo_oid: str, sourced: SourcedCase, latest: documents.FormedDocument,
                  digest: str, report: FormReport) -> None:
    """What was signed stays as signed; a record that changed since makes the document's next version (sent to
    ИЭМК as a replacement of the stored one)."""
    if latest.source_hash == digest:
        report.skipped += 1              # the same record: whatever the builders make of it now, nothing to do
        return
    # The record changed, or the row predates record hashes: does the document it makes differ from the signed one?
    # (A row formed before the hash was kept is judged by its bytes once, as before, and then by its record.)
    data, _ = _build(sourced, latest.version, report)
    if not data or data == latest.cda:
        report.errors.pop(sourced.source, None)     # a record that cannot make a new version leaves the signed one
        if data:
            documents.set_source_hash(conn, latest.id, digest)
        report.skipped += 1
        return
    data, status = _build(sourced, latest.version + 1, report)
    document_id = _insert(conn, mo_oid, sourced, latest.version + 1, data, status, digest)
    report.new_versions.append(sourced.source)
    _count_formed(report, sourced.case.kind, document_id, data)


def _insert(conn: psycopg.Connection, mo_oid: str, sourced: SourcedCase, version: int, data: bytes,
            status: str, digest: str) -> int:
    ctx = sourced.case.context
    return documents.insert_formed(conn, mo_oid=mo_oid, kind_code=sourced.case.kind, patient_id=sourced.patient_id,
                                   author_id=sourced.author_id, local_uid=ctx.local_uid, version=version,
                                   created_at=ctx.created_at, cda=data, status=status, source=sourced.source,
                                   source_hash=digest)


def _build(sourced: SourcedCase, version: int, report: FormReport) -> tuple[bytes, str]:
    case = sourced.case
    if version != case.context.version:
        case = dataclasses.replace(case, context=dataclasses.replace(case.context, version=version))
    try:
        return build(case), statuses.NOT_SIGNED
    except (FormingError, pdf.NotPdfError) as exc:
        report.errors[sourced.source] = str(exc)
        return b"", statuses.error(f"СЭМД не сформирован: {exc}")
    except Exception as exc:
        # A builder's own failure on this record (a bug, an input nobody foresaw) is this document's error row,
        # never the end of the period: the other records are formed, and forming again after the fix repairs it.
        log.error("forming %s: %s in the builder of kind %s", sourced.source, type(exc).__name__, case.kind)
        _, text = guard.reason(exc)
        report.errors[sourced.source] = text
        return b"", statuses.error(f"СЭМД не сформирован: {text}")


def _count_formed(report: FormReport, kind: int, document_id: int, data: bytes) -> None:
    if data:
        report.formed[kind] = report.formed.get(kind, 0) + 1
        report.document_ids.append(document_id)
