"""«Получить документы»: form the period's СЭМД from the МИС records into mis.semd_document («Не подписан»).

Forming is idempotent per record: a record that already has its document (same kind, same source) is
skipped, so the same period can be formed again at any time. A record that cannot make a valid document
still gets its row, in status «Ошибка: …» with the reason, so nothing disappears silently.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import psycopg

from iemk_etl import ledger
from iemk_etl.semd import FormingError, build, pdf
from iemk_etl.semd.source import Source, SourcedCase

log = logging.getLogger(__name__)


@dataclass
class FormReport:
    formed: dict[int, int] = field(default_factory=dict)     # kind → documents formed now
    document_ids: list[int] = field(default_factory=list)    # mis.semd_document ids formed now
    skipped: int = 0                                           # already formed earlier
    errors: dict[str, str] = field(default_factory=dict)     # source → reason

    @property
    def total(self) -> int:
        return sum(self.formed.values())


def form_period(conn: psycopg.Connection, mo_oid: str, start: dt.datetime, end: dt.datetime,
                kinds: set[int] | None = None) -> FormReport:
    report = FormReport()
    source = Source(conn, mo_oid)
    for sourced in source.cases(start, end, kinds):
        with conn.transaction():
            _form_one(conn, mo_oid, sourced, report)
    log.info("МО %s: formed %d documents, %d already formed, %d could not be formed",
             mo_oid, report.total, report.skipped, len(report.errors))
    return report


def _form_one(conn: psycopg.Connection, mo_oid: str, sourced: SourcedCase, report: FormReport) -> None:
    case = sourced.case
    exists = conn.execute("SELECT 1 FROM mis.semd_document WHERE mo_oid = %s AND kind_code = %s AND source = %s",
                          (mo_oid, case.kind, sourced.source)).fetchone()
    if exists:
        report.skipped += 1
        return
    try:
        data, status = build(case), ledger.NOT_SIGNED
    except (FormingError, pdf.NotPdfError) as exc:
        data, status = b"", f"{ledger.ERROR_PREFIX}СЭМД не сформирован: {exc}"
        report.errors[sourced.source] = str(exc)
    document_id = conn.execute(
        "INSERT INTO mis.semd_document (mo_oid, kind_code, patient_id, author_id, local_uid, version, created_at,"
        " cda, status, source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (mo_oid, case.kind, sourced.patient_id, sourced.author_id, case.context.local_uid, case.context.version,
         case.context.created_at, data, status[:2000], sourced.source)).fetchone()[0]
    if data:
        report.formed[case.kind] = report.formed.get(case.kind, 0) + 1
        report.document_ids.append(document_id)
