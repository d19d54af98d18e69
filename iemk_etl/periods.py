"""Periods of whole local days: the one rule for turning user dates into the instants the ledger compares.

A user (and the seed) speaks of days in the МО's time zone: «с 1 по 3 марта» means from the start of 1 March to
the start of 4 March, local time. Every command, DAG and report turns dates into instants here, so a day never
shifts by the three hours between Moscow and UTC in one place and not in another.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def zone(name: str) -> dt.tzinfo:
    """The time zone of a setting (``Settings.timezone``); one place that turns its name into a zone."""
    return ZoneInfo(name)


def day_start(day: dt.date, tz: dt.tzinfo | str) -> dt.datetime:
    """The first instant of a local day."""
    return dt.datetime.combine(day, dt.time(), zone(tz) if isinstance(tz, str) else tz)


def day_bounds(first: dt.date, last: dt.date, tz: dt.tzinfo | str) -> tuple[dt.datetime, dt.datetime]:
    """[start of ``first``, start of the day after ``last``): both days inclusive, as a half-open interval."""
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    return day_start(first, tz), day_start(last + dt.timedelta(days=1), tz)


def open_day_bounds(first: dt.date | None, last: dt.date | None,
                    tz: dt.tzinfo | str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Like ``day_bounds``, either side may be open (None)."""
    start = day_start(first, tz) if first else None
    end = day_start(last + dt.timedelta(days=1), tz) if last else None
    return start, end
