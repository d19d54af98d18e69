"""The tables of a report over a period, as pandas frames with the Russian headers people read.

МО × status, kind × status, day × status (documents created in the period, «Ошибка: …» folded into «Ошибка»), the
errors by class and who must act (``iemk_etl.errors``: МИС, администратор, ИЭМК, никто), and the latest errors with
their document ids. Nothing about patients beyond ids: an error's text has any СНИЛС in it masked.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pandas as pd
import psycopg

from iemk_etl import errors, kinds, periods, statuses
from iemk_etl.store.mis import reports

STATUS_ORDER = list(statuses.ORDER)
TOTAL = "Всего"
SAVED_SHARE = "Сохранено, %"
NO_ACTOR = "не определено"      # an error whose text names no class of the catalogue
ACTOR_ORDER = [a.value for a in errors.Actor] + [NO_ACTOR]

# Column headers, one place: the XLSX, the CSVs and `iemk-etl status --by` say the same words.
MO, MO_OID, KIND, KIND_NAME, DAY = "МО", "OID МО", "Вид СЭМД", "Наименование вида", "День"
ACTOR, CODE, ERROR_CLASS, DOCUMENTS = "Кто должен действовать", "Код ошибки", "Класс ошибки", "Документов"
ERROR_COLUMNS = ["Время статуса", MO, "ID документа", "Идентификатор СЭМД", "Версия", KIND, CODE, ACTOR, "Ошибка"]

# A СНИЛС, with or without its separators: masked wherever an error's text quotes one.
_SNILS = re.compile(r"(?<!\d)\d{3}[- ]?\d{3}[- ]?\d{3}[- ]?\d{2}(?!\d)")
_ERROR_TEXT_MAX = 500


@dataclass(frozen=True)
class Period:
    """Whole local days, both inclusive (either may be open, None); ``mo`` an OID or a code, None for every МО."""
    first: dt.date | None
    last: dt.date | None
    mo: str | None
    tz: str

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        if self.first and self.last and self.last < self.first:
            raise ValueError(f"the period ends ({self.last}) before it starts ({self.first})")
        return periods.open_day_bounds(self.first, self.last, self.tz)


@dataclass(frozen=True)
class Tables:
    by_mo: pd.DataFrame
    by_kind: pd.DataFrame
    by_day: pd.DataFrame
    error_classes: pd.DataFrame
    latest_errors: pd.DataFrame


def counts_frame(conn: psycopg.Connection, period: Period) -> pd.DataFrame:
    start, end = period.bounds()
    rows = reports.counts(conn, start, end, period.mo, period.tz)
    columns = ["mo", "mo_oid", "kind_code", "day", "status", "error_code", "error_title", "documents"]
    return pd.DataFrame([[getattr(r, c) for c in columns] for r in rows], columns=columns)


def build(conn: psycopg.Connection, period: Period, *, latest: int = 200) -> Tables:
    frame = counts_frame(conn, period)
    start, end = period.bounds()
    return Tables(
        by_mo=by_mo(frame),
        by_kind=by_kind(frame),
        by_day=by_day(frame, period),
        error_classes=error_classes(frame),
        latest_errors=latest_errors(reports.latest_errors(conn, start, end, period.mo, latest), period.tz),
    )


def _pivot(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Documents per key and status, every status a column (0 where none), and the total."""
    if frame.empty:
        table = pd.DataFrame(columns=[*keys, *STATUS_ORDER])
    else:
        table = frame.pivot_table(index=keys, columns="status", values="documents", aggfunc="sum",
                                  fill_value=0).reset_index()
    for status in STATUS_ORDER:
        table[status] = table[status].astype("int64") if status in table else 0
    table = table[[*keys, *STATUS_ORDER]].copy()
    table[TOTAL] = table[STATUS_ORDER].sum(axis=1).astype("int64")
    return table


def _saved_share(table: pd.DataFrame) -> pd.Series:
    return (100 * table[statuses.STORED] / table[TOTAL].where(table[TOTAL] > 0)).round(1).fillna(0.0)


def by_mo(frame: pd.DataFrame) -> pd.DataFrame:
    table = _pivot(frame, ["mo", "mo_oid"]).rename(columns={"mo": MO, "mo_oid": MO_OID})
    table[SAVED_SHARE] = _saved_share(table)
    return table


def kind_name(code: int) -> str:
    known = kinds.KINDS.get(int(code))
    return known.doc_type_name if known else "вид не поддерживается iemk-etl"


def by_kind(frame: pd.DataFrame) -> pd.DataFrame:
    table = _pivot(frame, ["kind_code"]).rename(columns={"kind_code": KIND})
    table.insert(1, KIND_NAME, [kind_name(code) for code in table[KIND]])
    table[SAVED_SHARE] = _saved_share(table)
    return table


def by_day(frame: pd.DataFrame, period: Period | None = None) -> pd.DataFrame:
    """Every day of the period a row, days without documents included (a gap in a plot is a day with none)."""
    table = _pivot(frame, ["day"]).rename(columns={"day": DAY})
    if period is not None and period.first and period.last:
        days = pd.DataFrame({DAY: [period.first + dt.timedelta(days=i)
                                   for i in range((period.last - period.first).days + 1)]})
        table = days.merge(table, on=DAY, how="left").fillna(0)
        table[[*STATUS_ORDER, TOTAL]] = table[[*STATUS_ORDER, TOTAL]].astype("int64")
    return table


def _error_class(code: str | None, title: str | None) -> tuple[str, str, str]:
    """(who must act, code, class) of an error: the ledger's code decides; without one, the title its text starts
    with, when exactly that title is in the catalogue. A missing value may come as NaN from a frame."""
    code = code if isinstance(code, str) else None
    title = title if isinstance(title, str) else None
    if code:
        kind = errors.kind(code)
        return kind.actor.value, code, kind.title
    wanted = (title or "").strip().casefold()
    matches = [k for k in errors.catalogue().values() if k.title.casefold() == wanted]
    if matches and len({(k.actor, k.title) for k in matches}) == 1:
        return matches[0].actor.value, matches[0].code if len(matches) == 1 else "—", matches[0].title
    return NO_ACTOR, "—", mask(title or "причина не указана")


def error_classes(frame: pd.DataFrame) -> pd.DataFrame:
    """Documents in «Ошибка» per class, grouped by who must act (МИС first), the largest class first."""
    failed = frame[frame["status"] == statuses.ERROR] if not frame.empty else frame
    rows = [(*_error_class(r.error_code, r.error_title), int(r.documents)) for r in failed.itertuples()]
    table = pd.DataFrame(rows, columns=[ACTOR, CODE, ERROR_CLASS, DOCUMENTS])
    if table.empty:
        return table.astype({DOCUMENTS: "int64"})
    table = table.groupby([ACTOR, CODE, ERROR_CLASS], as_index=False)[DOCUMENTS].sum()
    table["_order"] = table[ACTOR].map(ACTOR_ORDER.index)
    return (table.sort_values(["_order", DOCUMENTS, CODE], ascending=[True, False, True])
            .drop(columns="_order").reset_index(drop=True))


def mask(text: str) -> str:
    """An error's text fit for a report: any СНИЛС masked, cut short."""
    return _SNILS.sub("***-***-*** **", text)[:_ERROR_TEXT_MAX]


def latest_errors(rows: list[reports.ErrorRow], tz: str) -> pd.DataFrame:
    zone = periods.zone(tz)
    data = []
    for r in rows:
        actor, code, _ = _error_class(r.error_code, reason_title(r.status))
        data.append([r.status_at.astimezone(zone).replace(tzinfo=None, microsecond=0), r.mo, r.document_id,
                     r.local_uid, r.version, r.kind_code, code, actor,
                     mask(r.status.removeprefix(statuses.ERROR_PREFIX))])
    return pd.DataFrame(data, columns=ERROR_COLUMNS)


def reason_title(status: str) -> str:
    """The first part of an error status's reason: «Ошибка: СЭМД не сформирован: …» → «СЭМД не сформирован»."""
    return status.removeprefix(statuses.ERROR_PREFIX).split(": ", 1)[0]


# --- `iemk-etl status --by kind|day` -------------------------------------------------------------------------------

def status_by(conn: psycopg.Connection, period: Period, by: str) -> pd.DataFrame:
    """Documents of the period per kind or day and status (all МО of ``period.mo`` together)."""
    frame = counts_frame(conn, period)
    if by == "kind":
        return by_kind(frame)
    if by == "day":
        return by_day(frame, period)
    raise ValueError(f"unknown grouping {by!r}; use kind or day")


def render_by(table: pd.DataFrame, fmt: str) -> str:
    """The wide table as text; CSV and JSON in the long form ``<key>,status,documents`` of `status --format`."""
    key = table.columns[0]
    if fmt == "table":
        shown = table.drop(columns=[SAVED_SHARE], errors="ignore")
        return (shown.to_string(index=False) + "\n") if not shown.empty else "нет документов\n"
    name = "day" if key == DAY else "kind"
    long = (table.melt(id_vars=[key], value_vars=STATUS_ORDER, var_name="status", value_name="documents")
            .rename(columns={key: name}))
    long = long[long["documents"] > 0].sort_values(name, kind="stable")  # by key, statuses in their order within
    if name == "day":
        long[name] = long[name].map(dt.date.isoformat)
    if fmt == "csv":
        return long.to_csv(index=False)
    if fmt == "json":
        return long.to_json(orient="records", force_ascii=False) + "\n"
    raise ValueError(f"unknown format {fmt!r}; use table, csv or json")
