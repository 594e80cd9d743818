"""The billing calendar: which period a subscription is in, computed from its anchor.

Every boundary is the anchor plus ``n`` intervals, never the previous end plus one interval, so a
Jan 31 anchor bills Feb 28 (29 in leap years), Mar 31, Apr 30, and the anchor day comes back after
short months. Boundaries are *local dates* in the customer's IANA timezone; a period starts at the
first instant of its local billing date (local midnight, or the end of a DST gap when midnight
does not exist) and is stored as an aware UTC instant. Because each local date maps to exactly one
instant, a DST change can neither skip nor double a period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

from billing.domain.timeutil import to_utc
from billing.errors import InvalidInput


class IntervalUnit(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True)
class Interval:
    """``count`` times ``unit``: a 3-month interval is ``Interval(IntervalUnit.MONTH, 3)``."""

    unit: IntervalUnit
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise InvalidInput(f"an interval count must be at least 1 (got {self.count})")

    def times(self, n: int) -> relativedelta:
        """The offset of boundary ``n`` from the anchor."""
        k = self.count * n
        if self.unit is IntervalUnit.DAY:
            return relativedelta(days=k)
        if self.unit is IntervalUnit.WEEK:
            return relativedelta(weeks=k)
        if self.unit is IntervalUnit.MONTH:
            return relativedelta(months=k)
        return relativedelta(years=k)

    def approx_days(self) -> float:
        """Average length, used only to guess an index before exact correction."""
        per = {IntervalUnit.DAY: 1.0, IntervalUnit.WEEK: 7.0, IntervalUnit.MONTH: 30.436875,
               IntervalUnit.YEAR: 365.2425}
        return per[self.unit] * self.count

    def __str__(self) -> str:
        return f"{self.count} {self.unit}" + ("s" if self.count != 1 else "")


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; an unknown name is an input error, not a crash."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown IANA timezone {name!r} (e.g. America/Toronto)") from None


def local_date(at: datetime, tz: str) -> date:
    """The calendar date of instant ``at`` on the customer's wall clock."""
    return to_utc(at).astimezone(zone(tz)).date()


def start_of_local_day(day: date, tz: str) -> datetime:
    """The first instant of ``day`` in ``tz``, as aware UTC.

    ``fold=0`` maps a midnight that falls in a DST gap to the instant the gap ends, which is the
    first instant that day exists; midnights are never ambiguous in the tz database in practice.
    """
    return datetime.combine(day, time(0), tzinfo=zone(tz)).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """Billing period ``index``: ``[start, end)`` in UTC, and the local dates they fall on."""

    index: int
    start: datetime
    end: datetime
    start_date: date
    end_date: date

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class BillingCalendar:
    """Periods of one subscription: anchored on a local date, stepping by ``interval``."""

    anchor: date
    interval: Interval
    timezone: str

    def __post_init__(self) -> None:
        zone(self.timezone)

    def boundary_date(self, n: int) -> date:
        """Local billing date of boundary ``n`` (boundary 0 is the anchor)."""
        result: date = self.anchor + self.interval.times(n)
        return result

    def boundary(self, n: int) -> datetime:
        return start_of_local_day(self.boundary_date(n), self.timezone)

    def period(self, n: int) -> Period:
        if n < 0:
            raise InvalidInput(f"period index must be non-negative (got {n})")
        start_date, end_date = self.boundary_date(n), self.boundary_date(n + 1)
        return Period(
            index=n,
            start=start_of_local_day(start_date, self.timezone),
            end=start_of_local_day(end_date, self.timezone),
            start_date=start_date,
            end_date=end_date,
        )

    def index_at(self, at: datetime) -> int:
        """Index of the period containing ``at``; -1 before the anchor."""
        at = to_utc(at)
        if at < self.boundary(0):
            return -1
        days = (local_date(at, self.timezone) - self.anchor).days
        n = max(0, int(days / self.interval.approx_days()) - 1)
        while n > 0 and self.boundary(n) > at:
            n -= 1
        while self.boundary(n + 1) <= at:
            n += 1
        return n

    def period_at(self, at: datetime) -> Period:
        n = self.index_at(at)
        if n < 0:
            raise InvalidInput(f"{at.isoformat()} is before the billing anchor {self.anchor}")
        return self.period(n)

    def periods_starting_until(self, first: int, at: datetime) -> list[Period]:
        """Every period from index ``first`` whose start is at or before ``at``, in order.

        This is the catch-up rule: after downtime each missed period is billed once, in order.
        """
        last = self.index_at(at)
        return [self.period(n) for n in range(first, last + 1)]


def seconds_between(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end``; proration is exact to the second."""
    return int((to_utc(end) - to_utc(start)) // timedelta(seconds=1))
