"""What a report covers: local dates in the merchant's timezone, turned into UTC instants once.

A merchant asks for "1 to 30 November"; the database holds UTC instants. ``report_range`` does
the translation in one place: ``--from`` is inclusive from its first local instant, ``--to``
inclusive to its last, and a range that reaches past ``at`` (the report's "now") is measured up
to ``at``, so a month-to-date report never counts what has not happened yet. Every state-based
figure (MRR, aging, the dunning outcome) is taken *as of* ``end``.

MRR is sampled at ``points``: the start of the range, then the end of each calendar month the
range touches (the last one clipped to the end of the range). Movements are measured between
consecutive points, so a November report has two points (end of October, end of November) and
one row of movements.

>>> from datetime import UTC, date, datetime
>>> r = report_range(date(2026, 11, 1), date(2026, 11, 30), "America/Toronto",
...                  datetime(2026, 12, 1, 12, tzinfo=UTC))
>>> r.start.isoformat(), r.end.isoformat()
('2026-11-01T04:00:00+00:00', '2026-12-01T05:00:00+00:00')
>>> [(p.month, p.at.isoformat()) for p in r.points]
[('start', '2026-11-01T04:00:00+00:00'), ('2026-11', '2026-12-01T05:00:00+00:00')]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from billing.domain.calendar import local_date, start_of_local_day, zone
from billing.domain.timeutil import to_utc
from billing.errors import InvalidInput

MAX_MONTHS = 120
"""A report spans at most ten years: one MRR point per month, and a typo like 20266 stays an
error instead of a very long query."""


@dataclass(frozen=True)
class Point:
    """An instant MRR is measured at, labelled with the month it closes (``2026-11``); the
    first point of a range is the range's start, labelled ``start``."""

    month: str
    at: datetime


@dataclass(frozen=True)
class ReportRange:
    """Local dates ``first``..``last`` (inclusive) in ``timezone``, as UTC instants."""

    first: date
    last: date
    timezone: str
    start: datetime
    """The first instant of ``first``."""
    end: datetime
    """The first instant after ``last``, or ``generated_at`` when that comes first (exclusive)."""
    generated_at: datetime
    points: tuple[Point, ...]

    @property
    def label(self) -> str:
        """``2026-11-01 to 2026-11-30`` for titles and subjects."""
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


def parse_day(text: str, option: str) -> date:
    """A ``YYYY-MM-DD`` command-line date; anything else is one clear error naming the option."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{option}: expected a date like 2026-11-30, got {text!r}") from None


def _month_after(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _points(first: date, start: datetime, end: datetime, tz: str) -> tuple[Point, ...]:
    points = [Point("start", start)]
    month = first.replace(day=1)
    while start_of_local_day(month, tz) < end:
        closes = min(start_of_local_day(_month_after(month), tz), end)
        points.append(Point(f"{month:%Y-%m}", closes))
        month = _month_after(month)
    return tuple(points)


def report_range(first: date, last: date, timezone: str, at: datetime) -> ReportRange:
    """Check and translate a requested range; ``at`` is when the report is made."""
    zone(timezone)
    at = to_utc(at)
    if first > last:
        raise InvalidInput(f"--from {first} is after --to {last}")
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months > MAX_MONTHS:
        raise InvalidInput(f"a report covers at most {MAX_MONTHS} months ({first} to {last} "
                           f"is {months})")
    start = start_of_local_day(first, timezone)
    if start >= at:
        today = local_date(at, timezone)
        raise InvalidInput(f"--from {first} is in the future (today is {today} in {timezone})")
    end = min(start_of_local_day(last + timedelta(days=1), timezone), at)
    return ReportRange(first, last, timezone, start, end, at,
                       _points(first, start, end, timezone))


MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")


def month_name(day: date) -> str:
    """``February 2026``, in English whatever the process locale (``%B`` follows it)."""
    return f"{MONTH_NAMES[day.month - 1]} {day.year}"


def previous_month(at: datetime, timezone: str) -> tuple[date, date]:
    """The calendar month before the one ``at`` falls in, locally: what the 1st's report covers."""
    this_month = local_date(at, timezone).replace(day=1)
    last = this_month - timedelta(days=1)
    return last.replace(day=1), last


def previous_week(at: datetime, timezone: str) -> tuple[date, date]:
    """Monday to Sunday of the ISO week before the one ``at`` falls in, locally."""
    today = local_date(at, timezone)
    monday = today - timedelta(days=today.weekday() + 7)
    return monday, monday + timedelta(days=6)
