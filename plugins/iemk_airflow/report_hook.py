"""What the report DAG (``iemk_report``) writes: the status summary (the table behind ``iemk-etl status``) as CSV,
and the period report of ``iemk-etl report`` (XLSX workbook, CSV tables, PNG plots) for the days the triggering
export runs covered. Only paths and counts go back to XCom.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from iemk_etl.settings import Settings


def write_report(settings: Settings, mo_oids: list[str], run_id: str,
                 days: tuple[dt.date, dt.date] | None = None) -> dict[str, Any]:
    """The status summary of ``mo_oids`` (all МО when empty) as CSV under IEMK_HOME/reports, and the period report
    of ``days`` (default: the last 7 days) per МО (one for all when empty) in a folder named after the run."""
    import pandas as pd

    from iemk_airflow import resources
    from iemk_etl.pipeline import report, report_files
    from iemk_etl.store import db

    safe_run = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    first, last = days or _last_week(settings)
    folder = settings.home / "reports" / safe_run
    with db.connect(resources.source_dsn(settings)) as conn:
        frames = [report.documents(conn, oid) for oid in mo_oids] if mo_oids else [report.documents(conn)]
        quarantine = report.quarantined(conn)
        books = [report_files.write_report(conn, first, last, oid, folder / (oid or "all"), tz=settings.timezone)
                 for oid in (mo_oids or [None])]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out = settings.home / "reports" / f"status-{safe_run}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render(frame, "csv", quarantine), encoding="utf-8")
    return {"csv": str(out), "mo": mo_oids, "documents": int(len(frame)),
            "period": [first.isoformat(), last.isoformat()], "workbooks": [str(b.workbook) for b in books],
            "period_documents": sum(b.documents for b in books), "period_errors": sum(b.errors for b in books)}


def _last_week(settings: Settings) -> tuple[dt.date, dt.date]:
    import zoneinfo

    today = dt.datetime.now(zoneinfo.ZoneInfo(settings.timezone)).date()
    return today - dt.timedelta(days=6), today


def days_of(intervals: Sequence[Sequence[str | None]]) -> tuple[dt.date, dt.date] | None:
    """The local days the triggering runs' data intervals cover (their extra's ``interval``: ISO start, end), or
    None when none carries one (a hand run: the report takes the last week)."""
    starts = [dt.datetime.fromisoformat(i[0]) for i in intervals if i and i[0]]
    ends = [dt.datetime.fromisoformat(i[1]) for i in intervals if len(i) > 1 and i[1]]
    if not starts or not ends:
        return None
    # The end of an interval is exclusive: a night's run of [D, D+1) reports day D.
    return min(starts).date(), max(max(ends) - dt.timedelta(microseconds=1), min(starts)).date()
