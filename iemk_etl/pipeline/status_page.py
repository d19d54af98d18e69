"""The ИЭМК page of the Airflow UI (served by ``plugins/iemk_airflow/ui_plugin.py``): per МО the documents of a period
by status, the latest errors with their Russian text and who must act, and the documents last sent, each linked to
the Airflow run that sent it.

Pure presentation over the report's queries: the caller gives the connection and, for the links, which run sent
each document (only Airflow knows its runs, and this package never imports Airflow). Every value is escaped; no
patient data is read beyond document ids, and an error's text has any СНИЛС masked (``period_report.mask``).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import pandas as pd
import psycopg

from iemk_etl import periods, statuses
from iemk_etl.pipeline import period_report
from iemk_etl.store.mis import reports

DEFAULT_DAYS = 7        # the period shown when the form is empty: the last week, today included
LATEST = 50             # rows of the error and sent lists
RUN = "Запуск Airflow"
NOT_SENT = "не отправлялся"
RUN_UNKNOWN = "не найден"


@dataclass(frozen=True)
class RunLink:
    """The Airflow run that sent a document."""
    dag_id: str
    run_id: str

    def href(self) -> str:
        # Relative to the page (…/iemk/): the UI's run page, so a base path in front of Airflow is kept.
        return f"../dags/{quote(self.dag_id, safe='')}/runs/{quote(self.run_id, safe='')}"


@dataclass(frozen=True)
class Sending:
    """A document's last sending, to be matched with the run that made it."""
    document_id: int
    mo: str
    at: dt.datetime


@dataclass(frozen=True)
class Page:
    period: period_report.Period
    by_mo: pd.DataFrame
    errors: pd.DataFrame
    sent: list[reports.SentRow]
    error_sent_at: dict[int, dt.datetime]

    def sendings(self) -> list[Sending]:
        """Every sending the page links to a run: the documents last sent and the errors that had been sent."""
        found = {r.document_id: Sending(r.document_id, r.mo, r.last_sent_at) for r in self.sent}
        for row in self.errors.itertuples(index=False):
            doc_id = int(row[2])
            if doc_id in self.error_sent_at:
                found.setdefault(doc_id, Sending(doc_id, str(row[1]), self.error_sent_at[doc_id]))
        return list(found.values())


def parse_period(first: str | None, last: str | None, mo: str | None, tz: str,
                 today: dt.date | None = None) -> period_report.Period:
    """The form's period: ISO dates, both inclusive; empty fields mean the last ``DEFAULT_DAYS`` days."""
    today = today or dt.datetime.now(periods.zone(tz)).date()
    end = dt.date.fromisoformat(last) if last else today
    start = dt.date.fromisoformat(first) if first else end - dt.timedelta(days=DEFAULT_DAYS - 1)
    period = period_report.Period(start, end, (mo or "").strip() or None, tz)
    period.bounds()     # refuses a period that ends before it starts
    return period


def load(conn: psycopg.Connection, period: period_report.Period, latest: int = LATEST) -> Page:
    start, end = period.bounds()
    errors = period_report.latest_errors(reports.latest_errors(conn, start, end, period.mo, latest), period.tz)
    error_ids = [int(i) for i in errors["ID документа"]]
    return Page(period=period,
                by_mo=period_report.by_mo(period_report.counts_frame(conn, period)),
                errors=errors,
                sent=reports.sent_documents(conn, start, end, period.mo, latest),
                error_sent_at=reports.last_sent(conn, error_ids) if error_ids else {})


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _run_cell(doc_id: int, sent: bool, runs: Mapping[int, RunLink]) -> str:
    link = runs.get(doc_id)
    if link is not None:
        return f'<td class="run"><a href="{_e(link.href())}" target="_top">{_e(link.run_id)}</a></td>'
    return f'<td class="run">{_e(RUN_UNKNOWN if sent else NOT_SENT)}</td>'


def _by_mo(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    rows = []
    for _, r in table.iterrows():
        cells = [f'<td>{_e(r[period_report.MO])}</td>', f'<td>{_e(r[period_report.MO_OID])}</td>']
        cells += [f'<td class="n" data-mo="{_e(r[period_report.MO])}" data-status="{_e(s)}">{int(r[s])}</td>'
                  for s in [*statuses.ORDER, period_report.TOTAL]]
        cells.append(f'<td class="n">{_e(r[period_report.SAVED_SHARE])}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    body = "".join(rows) or f'<tr><td colspan="{len(table.columns)}">нет документов за период</td></tr>'
    return f'<table id="by-mo"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _errors(page: Page, runs: Mapping[int, RunLink]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in [*period_report.ERROR_COLUMNS, RUN])
    rows = []
    for row in page.errors.itertuples(index=False):
        doc_id = int(row[2])
        cells = "".join(f"<td>{_e(v)}</td>" for v in row)
        rows.append(f'<tr data-document="{doc_id}">{cells}{_run_cell(doc_id, doc_id in page.error_sent_at, runs)}'
                    "</tr>")
    body = "".join(rows) or f'<tr><td colspan="{len(period_report.ERROR_COLUMNS) + 1}">ошибок нет</td></tr>'
    return f'<table id="errors"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _sent(page: Page, runs: Mapping[int, RunLink]) -> str:
    zone = periods.zone(page.period.tz)
    columns = ["Отправлен", period_report.MO, "ID документа", "Идентификатор СЭМД", "Версия", period_report.KIND,
               "Статус", RUN]
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = []
    for r in page.sent:
        values = [r.last_sent_at.astimezone(zone).replace(tzinfo=None, microsecond=0), r.mo, r.document_id,
                  r.local_uid, r.version, r.kind_code, period_report.mask(r.status)]
        cells = "".join(f"<td>{_e(v)}</td>" for v in values)
        rows.append(f'<tr data-document="{r.document_id}">{cells}{_run_cell(r.document_id, True, runs)}</tr>')
    body = "".join(rows) or f'<tr><td colspan="{len(columns)}">за период ничего не отправлено</td></tr>'
    return f'<table id="sent"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem;font-size:14px}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right}
form{margin-bottom:1rem}label{margin-right:1rem}
"""


def render(page: Page, runs: Mapping[int, RunLink]) -> str:
    """The whole page; ``runs`` maps a document id to the run that last sent it."""
    p = page.period
    form = (f'<form method="get"><label>С <input type="date" name="from" value="{_e(p.first)}"></label>'
            f'<label>по <input type="date" name="to" value="{_e(p.last)}"></label>'
            f'<label>МО (код или OID) <input type="text" name="mo" value="{_e(p.mo or "")}"></label>'
            '<button type="submit">Показать</button></form>')
    return ("<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>ИЭМК: документы</title>"
            f"<style>{_STYLE}</style></head><body>"
            f"<h1>Документы в ИЭМК</h1>{form}"
            f"<p>Документы, созданные с {_e(p.first)} по {_e(p.last)} ({_e(p.tz)})"
            f"{', МО ' + _e(p.mo) if p.mo else ''}.</p>"
            f"<h2>По МО и статусам</h2>{_by_mo(page.by_mo)}"
            f"<h2>Последние ошибки</h2>{_errors(page, runs)}"
            f"<h2>Последние отправленные</h2>{_sent(page, runs)}"
            "</body></html>")


def error_page(message: str) -> str:
    return ("<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>ИЭМК</title></head><body>"
            f"<p>{_e(message)}</p><p><a href=\".\">Назад</a></p></body></html>")
