"""A report people can open: one XLSX workbook, the same tables as CSV, and PNG plots, written into one folder.

``write_report`` is the one entry point, for `iemk-etl report` and the report DAG alike. The workbook has a sheet
per table (headers frozen, columns sized to their content) and native Excel charts; the plots are drawn with
matplotlib's Agg canvas directly (no pyplot: no global state, no display, safe in a worker process). Import this
module where a report is made (a command, a task), not where a DAG is parsed: matplotlib takes a while to load.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from openpyxl.chart import BarChart, Reference
from openpyxl.utils import get_column_letter

from iemk_etl import statuses
from iemk_etl.pipeline import period_report as pr
from iemk_etl.settings import DEFAULT_TIMEZONE
from iemk_etl.store import integration

WORKBOOK = "report.xlsx"
# Sheet name (at most 31 characters, Excel's limit), CSV file name, and the table of ``period_report.Tables``.
SHEETS = (
    ("МО × статус", "mo_status.csv", "by_mo"),
    ("Вид × статус", "kind_status.csv", "by_kind"),
    ("День × статус", "day_status.csv", "by_day"),
    ("Ошибки по ответственным", "error_classes.csv", "error_classes"),
    ("Последние ошибки", "latest_errors.csv", "latest_errors"),
)
PLOTS = ("days.png", "mo_saved.png", "error_classes.png")
# One colour per status, the same in every plot and chart: grey → blue → green, errors red.
COLOURS = {statuses.NOT_SIGNED: "9E9E9E", statuses.SIGNED: "90CAF9", statuses.SENT: "1E88E5",
           statuses.STORED: "43A047", statuses.ERROR: "E53935"}
# CSV for people first: with a BOM, a spreadsheet program reads the Cyrillic headers right.
CSV_ENCODING = "utf-8-sig"


@dataclass(frozen=True)
class ReportFiles:
    """What ``write_report`` wrote, and the period's totals (the report DAG passes these on, not the files)."""
    workbook: Path
    csv: dict[str, Path] = field(default_factory=dict)
    png: dict[str, Path] = field(default_factory=dict)
    documents: int = 0
    errors: int = 0

    def paths(self) -> list[Path]:
        return [self.workbook, *self.csv.values(), *self.png.values()]


def write_report(conn: psycopg.Connection, start: dt.date, end: dt.date, mo_oid: str | None, out_dir: Path, *,
                 tz: str = DEFAULT_TIMEZONE, latest: int = 200) -> ReportFiles:
    """The report of the documents created from ``start`` to ``end`` (local days, both inclusive) of one МО (OID or
    code; None for all) into ``out_dir``: the workbook, the CSVs and the plots, each file replaced whole."""
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    mo = integration.resolve_mo(conn, mo_oid).oid if mo_oid else None
    period = pr.Period(start, end, mo, tz)
    tables = pr.build(conn, period, latest=latest)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = {attr: getattr(tables, attr) for _, _, attr in SHEETS}
    csv = {}
    for _, name, attr in SHEETS:
        csv[attr] = out_dir / name
        _replace(csv[attr], lambda tmp, frame=frames[attr]: frame.to_csv(tmp, index=False, encoding=CSV_ENCODING))
    workbook = out_dir / WORKBOOK
    _replace(workbook, lambda tmp: write_workbook(tmp, tables, period))
    png = {name: out_dir / name for name in PLOTS}
    _replace(png["days.png"], lambda tmp: plot_days(tables.by_day, tmp, period))
    _replace(png["mo_saved.png"], lambda tmp: plot_saved(tables.by_mo, tmp, period))
    _replace(png["error_classes.png"], lambda tmp: plot_error_classes(tables.error_classes, tmp, period))
    return ReportFiles(workbook, csv, png, documents=int(tables.by_mo[pr.TOTAL].sum()),
                       errors=int(tables.by_mo[statuses.ERROR].sum()))


def _replace(path: Path, write: object) -> None:
    """Write beside, then rename: a reader (a mail step, a download) never sees half a file."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write(tmp)  # type: ignore[operator]
    tmp.replace(path)


def period_title(period: pr.Period) -> str:
    where = f"МО {period.mo}" if period.mo else "все МО"
    return f"{period.first:%d.%m.%Y} – {period.last:%d.%m.%Y}, {where}"


# --- the workbook ------------------------------------------------------------------------------------------------

def write_workbook(path: Path, tables: pr.Tables, period: pr.Period) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for sheet, _, attr in SHEETS:
            getattr(tables, attr).to_excel(writer, sheet_name=sheet, index=False)
        about = pd.DataFrame({"Параметр": ["Период (дни создания документов)", "МО", "Часовой пояс", "Сформирован"],
                              "Значение": [f"{period.first:%d.%m.%Y} – {period.last:%d.%m.%Y}", period.mo or "все",
                                           period.tz, dt.datetime.now().replace(microsecond=0).isoformat(" ")]})
        about.to_excel(writer, sheet_name="Параметры", index=False)
        book = writer.book
        for sheet, _, attr in SHEETS:
            frame = getattr(tables, attr)
            # The pivots keep their first column (МО, kind, day) in view too; the lists only their header.
            _format_sheet(book[sheet], frame, freeze="B2" if attr.startswith("by_") else "A2")
        _format_sheet(book["Параметры"], about, freeze="A2")
        _chart_statuses(book["День × статус"], tables.by_day, "Документы по дням и статусам", "J2")
        _chart_statuses(book["МО × статус"], tables.by_mo, "Документы по МО и статусам", "L2", first_col=3)


def _format_sheet(ws: object, frame: pd.DataFrame, *, freeze: str) -> None:
    ws.freeze_panes = freeze  # type: ignore[attr-defined]
    for i, column in enumerate(frame.columns, start=1):
        values = [str(v) for v in frame[column].head(500)]
        width = max([len(str(column)), *map(len, values)]) + 2
        ws.column_dimensions[get_column_letter(i)].width = min(width, 80)  # type: ignore[attr-defined]
    if len(frame.columns):
        ws.auto_filter.ref = ws.dimensions  # type: ignore[attr-defined]


def _chart_statuses(ws: object, table: pd.DataFrame, title: str, anchor: str, first_col: int = 2) -> None:
    """A stacked bar chart of the status columns, categories from the first column; nothing for an empty table."""
    if table.empty:
        return
    chart = BarChart()
    chart.type = "col"
    chart.grouping = "stacked"
    chart.overlap = 100
    chart.title = title
    chart.y_axis.title = pr.DOCUMENTS
    chart.width, chart.height = 22, 11
    rows = len(table) + 1
    first_status = first_col
    data = Reference(ws, min_col=first_status, max_col=first_status + len(pr.STATUS_ORDER) - 1,
                     min_row=1, max_row=rows)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=rows))
    for series, status in zip(chart.series, pr.STATUS_ORDER, strict=True):
        series.graphicalProperties.solidFill = COLOURS[status]
        series.graphicalProperties.line.solidFill = COLOURS[status]
    ws.add_chart(chart, anchor)  # type: ignore[attr-defined]


# --- the plots ---------------------------------------------------------------------------------------------------

def _figure(width: float, height: float) -> tuple[object, object]:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: object, path: Path) -> None:
    fig.savefig(path, format="png")  # type: ignore[attr-defined]


def _empty(ax: object, text: str = "нет документов за период") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)  # type: ignore[attr-defined]
    ax.set_axis_off()  # type: ignore[attr-defined]


def plot_days(by_day: pd.DataFrame, path: Path, period: pr.Period) -> None:
    """Per day: the documents as bars stacked by status."""
    fig, ax = _figure(max(8.0, 0.35 * len(by_day) + 4), 4.5)
    ax.set_title(f"Документы по дням и статусам\n{period_title(period)}")
    if by_day[pr.TOTAL].sum() == 0:
        _empty(ax)
    else:
        labels = [d.strftime("%d.%m") for d in by_day[pr.DAY]]
        bottom = pd.Series(0, index=by_day.index)
        for status in pr.STATUS_ORDER:
            ax.bar(labels, by_day[status], bottom=bottom, label=status, color=f"#{COLOURS[status]}")
            bottom = bottom + by_day[status]
        ax.set_ylabel(pr.DOCUMENTS)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="x", labelrotation=90 if len(labels) > 14 else 0)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never on them
    _save(fig, path)


def plot_saved(by_mo: pd.DataFrame, path: Path, period: pr.Period) -> None:
    """Per МО: the share of its documents «Сохранен в ИЭМК»."""
    fig, ax = _figure(7.0, max(2.5, 0.45 * len(by_mo) + 1.5))
    ax.set_title(f"Доля «{statuses.STORED}» по МО\n{period_title(period)}")
    if by_mo.empty:
        _empty(ax)
    else:
        bars = ax.barh(by_mo[pr.MO], by_mo[pr.SAVED_SHARE], color=f"#{COLOURS[statuses.STORED]}")
        ax.bar_label(bars, labels=[f"{v:.1f}% ({s} из {t})" for v, s, t in
                                   zip(by_mo[pr.SAVED_SHARE], by_mo[statuses.STORED], by_mo[pr.TOTAL], strict=True)],
                     padding=3, fontsize="small")
        ax.set_xlim(0, 115)
        ax.set_xlabel("%")
        ax.invert_yaxis()
    _save(fig, path)


def plot_error_classes(classes: pd.DataFrame, path: Path, period: pr.Period, top: int = 10) -> None:
    """The classes of error with the most documents, each labelled with who must act."""
    shown = classes.nlargest(top, pr.DOCUMENTS) if not classes.empty else classes
    fig, ax = _figure(11.0, max(2.5, 0.45 * len(shown) + 1.5))
    ax.set_title(f"Частые ошибки\n{period_title(period)}")
    if shown.empty:
        _empty(ax, "ошибок за период нет")
    else:
        labels = [f"{_short(c)} [{a}]" for c, a in zip(shown[pr.ERROR_CLASS], shown[pr.ACTOR], strict=True)]
        bars = ax.barh(labels, shown[pr.DOCUMENTS], color=f"#{COLOURS[statuses.ERROR]}")
        ax.bar_label(bars, padding=3, fontsize="small")
        ax.set_xlim(0, shown[pr.DOCUMENTS].max() * 1.1)    # room for the largest bar's label
        ax.set_xlabel(pr.DOCUMENTS)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize="small")
    _save(fig, path)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
