"""The billing calendar: anchor-based periods on local billing dates, stored as aware UTC."""

from __future__ import annotations

import calendar as stdlib_calendar
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule
from hypothesis import example, given, settings
from hypothesis import strategies as st

from billing.domain.calendar import (
    BillingCalendar,
    Interval,
    IntervalUnit,
    Period,
    local_date,
    seconds_between,
)
from billing.errors import InvalidInput

DAY, WEEK, MONTH, YEAR = IntervalUnit.DAY, IntervalUnit.WEEK, IntervalUnit.MONTH, IntervalUnit.YEAR
MICRO = timedelta(microseconds=1)

# DST zones named by the issue, with how far their clocks move: Lord Howe moves 30 minutes,
# Havana and Santiago change at local midnight (Havana even repeats midnight in November).
DST_ZONES = {
    "America/Toronto": 3600,
    "Europe/Paris": 3600,
    "Australia/Lord_Howe": 1800,
    "America/Havana": 3600,
    "America/Santiago": 3600,
}
# Plus zones with odd offsets or no DST, at both ends of the date line.
ZONES = [*DST_ZONES, "UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham",
         "Asia/Kathmandu", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Tokyo"]

# Every IANA zone is fine from 2012 on; before that a few Pacific zones skipped a whole date when
# they crossed the date line (Pacific/Apia on 2011-12-30), which makes a zero-length daily period.
MIN_ANCHOR, MAX_ANCHOR = date(2012, 1, 1), date(2060, 12, 31)


@st.composite
def anchors(draw: st.DrawFn) -> date:
    """Any date, with the days that are hard for month arithmetic (28th to 31st) drawn often."""
    if draw(st.booleans()):
        return draw(st.dates(MIN_ANCHOR, MAX_ANCHOR))
    year = draw(st.integers(MIN_ANCHOR.year, MAX_ANCHOR.year))
    month = draw(st.integers(1, 12))
    last = stdlib_calendar.monthrange(year, month)[1]
    return date(year, month, draw(st.integers(28, last)))


intervals = st.builds(Interval, st.sampled_from(list(IntervalUnit)), st.integers(1, 12))
zones = st.one_of(st.sampled_from(ZONES), st.timezone_keys())
calendars = st.builds(BillingCalendar, anchors(), intervals, zones)


def periods(cal: BillingCalendar, count: int) -> list[Period]:
    return [cal.period(n) for n in range(count)]


def last_day(year: int, month: int) -> int:
    return stdlib_calendar.monthrange(year, month)[1]


def rrule_dates(anchor: date, interval: Interval, count: int) -> list[date]:
    """The same schedule from dateutil.rrule, which enumerates rather than adds offsets."""
    day = anchor.day
    if interval.unit is DAY:
        rule = rrule(DAILY, dtstart=anchor, interval=interval.count, count=count)
    elif interval.unit is WEEK:
        rule = rrule(WEEKLY, dtstart=anchor, interval=interval.count, count=count)
    elif interval.unit is MONTH:
        # "day d, or the month's last day when it has fewer": the first of {d, -1} that exists.
        rule = rrule(MONTHLY, dtstart=anchor, interval=interval.count, count=count,
                     bymonthday=(day, -1), bysetpos=1)
    else:
        rule = rrule(YEARLY, dtstart=anchor, interval=interval.count, count=count,
                     bymonth=anchor.month, bymonthday=(day, -1), bysetpos=1)
    return [moment.date() for moment in rule]


# --- worked examples ---------------------------------------------------------------------------


def boundary_dates(anchor: date, interval: Interval, count: int) -> list[date]:
    cal = BillingCalendar(anchor, interval, "America/Toronto")
    return [cal.boundary_date(n) for n in range(count)]


def test_jan_31_anchor_bills_feb_28_then_mar_31() -> None:
    assert boundary_dates(date(2025, 1, 31), Interval(MONTH), 5) == [
        date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30),
        date(2025, 5, 31),
    ]


def test_jan_31_anchor_bills_feb_29_in_a_leap_year() -> None:
    assert boundary_dates(date(2024, 1, 31), Interval(MONTH), 3) == [
        date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31),
    ]


def test_feb_29_anchor_in_leap_year_bills_feb_28_next_year() -> None:
    assert boundary_dates(date(2024, 2, 29), Interval(YEAR), 5) == [
        date(2024, 2, 29), date(2025, 2, 28), date(2026, 2, 28), date(2027, 2, 28),
        date(2028, 2, 29),
    ]


def test_quarterly_plan_anchored_on_nov_30_comes_back_to_the_30th_after_february() -> None:
    assert boundary_dates(date(2024, 11, 30), Interval(MONTH, 3), 4) == [
        date(2024, 11, 30), date(2025, 2, 28), date(2025, 5, 30), date(2025, 8, 30),
    ]


def test_biweekly_plan_steps_fourteen_days() -> None:
    assert boundary_dates(date(2025, 12, 24), Interval(WEEK, 2), 3) == [
        date(2025, 12, 24), date(2026, 1, 7), date(2026, 1, 21),
    ]


def test_period_starts_at_local_midnight_of_the_billing_date_in_utc() -> None:
    cal = BillingCalendar(date(2025, 1, 15), Interval(MONTH), "America/Toronto")
    first, after_dst = cal.period(0), cal.period(2)
    assert first.start == datetime(2025, 1, 15, 5, tzinfo=UTC)  # EST, UTC-5
    assert first.end == datetime(2025, 2, 15, 5, tzinfo=UTC)
    assert after_dst.start == datetime(2025, 3, 15, 4, tzinfo=UTC)  # EDT, UTC-4
    assert (first.start_date, first.end_date) == (date(2025, 1, 15), date(2025, 2, 15))


def test_the_customer_timezone_decides_which_period_an_instant_falls_in() -> None:
    # 03:00 UTC on Feb 1 is still Jan 31 in Toronto but already Feb 1 in UTC and Tokyo.
    at = datetime(2025, 2, 1, 3, tzinfo=UTC)
    plans = {tz: BillingCalendar(date(2025, 1, 1), Interval(MONTH), tz)
             for tz in ("America/Toronto", "UTC", "Asia/Tokyo")}
    assert {tz: cal.index_at(at) for tz, cal in plans.items()} == {
        "America/Toronto": 0, "UTC": 1, "Asia/Tokyo": 1,
    }


@pytest.mark.parametrize(
    ("tz", "day", "start", "hours"),
    [
        ("America/Toronto", date(2024, 3, 10), datetime(2024, 3, 10, 5, tzinfo=UTC), 23),
        ("America/Toronto", date(2024, 11, 3), datetime(2024, 11, 3, 4, tzinfo=UTC), 25),
        ("Europe/Paris", date(2024, 3, 31), datetime(2024, 3, 30, 23, tzinfo=UTC), 23),
        ("Europe/Paris", date(2024, 10, 27), datetime(2024, 10, 26, 22, tzinfo=UTC), 25),
        ("Australia/Lord_Howe", date(2024, 4, 7), datetime(2024, 4, 6, 13, tzinfo=UTC), 24.5),
        ("Australia/Lord_Howe", date(2024, 10, 6), datetime(2024, 10, 5, 13, 30, tzinfo=UTC),
         23.5),
        # Havana springs forward at midnight: the day starts at 01:00 CDT, when the gap ends.
        ("America/Havana", date(2024, 3, 10), datetime(2024, 3, 10, 5, tzinfo=UTC), 23),
        # ...and falls back at 01:00 to 00:00, so midnight happens twice: the first one counts.
        ("America/Havana", date(2024, 11, 3), datetime(2024, 11, 3, 4, tzinfo=UTC), 25),
        # Santiago changes at 24:00 on Saturday.
        ("America/Santiago", date(2024, 4, 6), datetime(2024, 4, 6, 3, tzinfo=UTC), 25),
        ("America/Santiago", date(2024, 9, 8), datetime(2024, 9, 8, 4, tzinfo=UTC), 23),
    ],
)
def test_a_daily_period_on_a_dst_change_day_is_shorter_or_longer_but_billed_once(
    tz: str, day: date, start: datetime, hours: float
) -> None:
    cal = BillingCalendar(day - timedelta(days=3), Interval(DAY), tz)
    before, period, after = cal.period(2), cal.period(3), cal.period(4)
    assert period.start_date == day
    assert period.start == start
    assert period.seconds == hours * 3600
    assert before.end == period.start and period.end == after.start
    assert before.seconds == after.seconds == 86400
    assert cal.index_at(start - MICRO) == 2 and cal.index_at(start) == 3


def test_before_the_anchor_there_is_no_period() -> None:
    cal = BillingCalendar(date(2025, 1, 31), Interval(MONTH), "Europe/Paris")
    just_before = datetime(2025, 1, 30, 22, 59, 59, tzinfo=UTC)  # 23:59:59 on Jan 30 in Paris
    assert cal.index_at(just_before) == -1
    assert cal.index_at(just_before + timedelta(seconds=1)) == 0
    assert cal.periods_starting_until(0, just_before) == []
    with pytest.raises(InvalidInput, match="before the billing anchor"):
        cal.period_at(just_before)


def test_naive_datetimes_are_rejected() -> None:
    cal = BillingCalendar(date(2025, 1, 31), Interval(MONTH), "America/Toronto")
    naive = datetime(2025, 3, 1, 12)
    for call in (cal.index_at, cal.period_at, lambda at: cal.periods_starting_until(0, at),
                 lambda at: local_date(at, "UTC"),
                 lambda at: seconds_between(at, datetime(2025, 3, 2, tzinfo=UTC)),
                 lambda at: seconds_between(datetime(2025, 3, 2, tzinfo=UTC), at)):
        with pytest.raises(InvalidInput, match="naive datetime"):
            call(naive)


def test_invalid_calendars_are_input_errors() -> None:
    with pytest.raises(InvalidInput, match="unknown IANA timezone"):
        BillingCalendar(date(2025, 1, 1), Interval(MONTH), "Mars/Olympus_Mons")
    with pytest.raises(InvalidInput, match="unknown IANA timezone"):
        BillingCalendar(date(2025, 1, 1), Interval(MONTH), "../etc/passwd")
    with pytest.raises(InvalidInput, match="at least 1"):
        Interval(MONTH, 0)
    with pytest.raises(InvalidInput, match="non-negative"):
        BillingCalendar(date(2025, 1, 1), Interval(MONTH), "UTC").period(-1)


def test_seconds_between_is_exact_across_offsets() -> None:
    start = datetime(2024, 3, 9, 0, tzinfo=ZoneInfo("America/Toronto"))
    end = datetime(2024, 3, 11, 0, tzinfo=ZoneInfo("America/Toronto"))
    assert seconds_between(start, end) == 47 * 3600  # one hour lost to DST
    assert seconds_between(end, start) == -47 * 3600


def test_interval_names_read_as_english() -> None:
    assert str(Interval(MONTH)) == "1 month"
    assert str(Interval(WEEK, 2)) == "2 weeks"


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(cal=calendars)
def test_periods_are_contiguous_never_overlap_and_are_aware_utc(cal: BillingCalendar) -> None:
    run = periods(cal, 25)
    for n, period in enumerate(run):
        assert period.index == n
        assert period.start < period.end
        assert period.start_date < period.end_date
        assert period.start == cal.boundary(n)
        for instant in (period.start, period.end):
            assert instant.tzinfo is UTC
    for earlier, later in pairwise(run):
        assert earlier.end == later.start
        assert earlier.end_date == later.start_date


@settings(max_examples=150, deadline=None)
@given(cal=calendars)
def test_a_period_starts_at_the_first_instant_of_its_local_billing_date(
    cal: BillingCalendar,
) -> None:
    for period in periods(cal, 13):
        assert local_date(period.start, cal.timezone) == period.start_date
        assert local_date(period.start - MICRO, cal.timezone) == period.start_date - timedelta(1)


@settings(max_examples=200, deadline=None)
@given(anchor=anchors(), count=st.integers(1, 12))
@example(anchor=date(2024, 1, 31), count=1)
@example(anchor=date(2023, 8, 31), count=6)
def test_the_anchor_day_is_restored_after_short_months(anchor: date, count: int) -> None:
    cal = BillingCalendar(anchor, Interval(MONTH, count), "UTC")
    for n in range(30):
        start = cal.boundary_date(n)
        months = (start.year - anchor.year) * 12 + start.month - anchor.month
        assert months == n * count
        expected = min(anchor.day, last_day(start.year, start.month))
        assert start.day == expected


@settings(max_examples=100, deadline=None)
@given(anchor=anchors(), count=st.integers(1, 12))
@example(anchor=date(2024, 2, 29), count=1)
def test_a_yearly_anchor_restores_feb_29_in_leap_years(anchor: date, count: int) -> None:
    cal = BillingCalendar(anchor, Interval(YEAR, count), "UTC")
    for n in range(20):
        start = cal.boundary_date(n)
        assert (start.year, start.month) == (anchor.year + n * count, anchor.month)
        assert start.day == min(anchor.day, last_day(start.year, start.month))


@settings(max_examples=300, deadline=None)
@given(anchor=anchors(), unit=st.sampled_from(list(IntervalUnit)), count=st.integers(1, 12),
       tz=st.sampled_from(ZONES))
@example(anchor=date(2024, 1, 31), unit=MONTH, count=1, tz="UTC")
@example(anchor=date(2024, 2, 29), unit=YEAR, count=1, tz="UTC")
@example(anchor=date(2024, 8, 30), unit=MONTH, count=6, tz="UTC")
def test_boundaries_agree_with_a_dateutil_rrule_oracle(
    anchor: date, unit: IntervalUnit, count: int, tz: str
) -> None:
    interval = Interval(unit, count)
    cal = BillingCalendar(anchor, interval, tz)
    expected = rrule_dates(anchor, interval, 25)
    assert [cal.boundary_date(n) for n in range(25)] == expected
    assert [p.start_date for p in periods(cal, 24)] == expected[:-1]
    assert [p.end_date for p in periods(cal, 24)] == expected[1:]


@settings(max_examples=40, deadline=None)
@given(tz=st.sampled_from(sorted(DST_ZONES)), anchor=st.dates(date(2020, 1, 1), date(2040, 12, 31)))
@example(tz="America/Havana", anchor=date(2024, 1, 1))
@example(tz="America/Santiago", anchor=date(2024, 1, 1))
@example(tz="Australia/Lord_Howe", anchor=date(2024, 1, 1))
def test_dst_changes_neither_skip_nor_double_a_daily_period(tz: str, anchor: date) -> None:
    cal = BillingCalendar(anchor, Interval(DAY), tz)
    # 380 days always holds a spring-forward and a fall-back from 2020 on ("second Sunday of March"
    # drifts, so consecutive changes can be 371 days apart; Santiago kept DST all of 2015).
    run = periods(cal, 380)
    shift = DST_ZONES[tz]
    for n, period in enumerate(run):
        assert period.start_date == anchor + timedelta(days=n)
        assert period.seconds in (86400 - shift, 86400, 86400 + shift)
    starts = [p.start for p in run]
    assert all(a < b for a, b in pairwise(starts))
    lengths = {p.seconds for p in run}
    assert {86400 - shift, 86400 + shift} <= lengths, "the window should cross both changes"
    # Walk every quarter hour through the days around each change: no index is skipped or repeated.
    for period in run[1:-1]:
        if period.seconds == 86400:
            continue
        first, last = period.index - 1, period.index + 1
        at, seen = run[first].start, []
        while at < run[last].end:
            seen.append(cal.index_at(at))
            at += timedelta(minutes=15)
        assert sorted(set(seen)) == [first, period.index, last]
        assert seen == sorted(seen)


@settings(max_examples=300, deadline=None)
@given(cal=calendars, data=st.data())
def test_index_at_and_period_at_return_the_period_containing_the_instant(
    cal: BillingCalendar, data: st.DataObject
) -> None:
    origin, horizon = cal.boundary(0), cal.boundary(15)
    span = int((horizon - origin).total_seconds())
    offset = data.draw(st.integers(-40 * 86400, span), label="seconds after the anchor")
    at = origin + timedelta(seconds=offset, microseconds=data.draw(st.integers(0, 999_999)))
    local = at.astimezone(ZoneInfo(cal.timezone))
    if at < origin:
        assert cal.index_at(at) == cal.index_at(local) == -1
        with pytest.raises(InvalidInput):
            cal.period_at(at)
        return
    period = cal.period_at(at)
    assert period.contains(at)
    assert cal.index_at(at) == cal.index_at(local) == period.index
    assert period == cal.period_at(local)


@settings(max_examples=200, deadline=None)
@given(cal=calendars, n=st.integers(0, 40))
def test_a_boundary_instant_belongs_to_the_period_it_starts(cal: BillingCalendar, n: int) -> None:
    boundary = cal.boundary(n)
    assert cal.index_at(boundary) == n
    assert cal.index_at(boundary - MICRO) == n - 1


@settings(max_examples=200, deadline=None)
@given(cal=calendars, data=st.data())
def test_periods_starting_until_returns_each_due_period_once_in_order(
    cal: BillingCalendar, data: st.DataObject
) -> None:
    origin = cal.boundary(0)
    span = int((cal.boundary(12) - origin).total_seconds())
    first_run, second_run = sorted(
        origin + timedelta(seconds=data.draw(st.integers(-86400, span))) for _ in range(2)
    )
    start = data.draw(st.integers(0, 3), label="first unbilled index")
    due = cal.periods_starting_until(start, second_run)
    last = cal.index_at(second_run)
    assert [p.index for p in due] == list(range(start, last + 1))
    assert all(p.start <= second_run for p in due)
    assert cal.boundary(last + 1) > second_run  # the next period is not due yet
    # Catching up in two runs bills the same periods as one run, none twice.
    earlier = cal.periods_starting_until(start, first_run)
    later = cal.periods_starting_until(start + len(earlier), second_run)
    assert earlier + later == due
