"""A report's range: local dates to UTC instants, MRR points, and the mistakes a person makes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from billing.errors import InvalidInput
from billing.reports.period import parse_day, previous_month, previous_week, report_range

TZ = "America/Toronto"
LATER = datetime(2027, 1, 1, tzinfo=UTC)


def test_local_dates_become_local_midnights_across_a_dst_change() -> None:
    rng = report_range(date(2026, 3, 1), date(2026, 3, 31), TZ, LATER)
    assert rng.start == datetime(2026, 3, 1, 5, tzinfo=UTC)  # EST
    assert rng.end == datetime(2026, 4, 1, 4, tzinfo=UTC)  # EDT since March 8


def test_one_point_per_month_end_after_the_start() -> None:
    rng = report_range(date(2026, 1, 15), date(2026, 3, 10), TZ, LATER)
    assert [(p.month, p.at) for p in rng.points] == [
        ("start", datetime(2026, 1, 15, 5, tzinfo=UTC)),
        ("2026-01", datetime(2026, 2, 1, 5, tzinfo=UTC)),
        ("2026-02", datetime(2026, 3, 1, 5, tzinfo=UTC)),
        ("2026-03", datetime(2026, 3, 11, 4, tzinfo=UTC)),  # clipped to the end of the range
    ]


def test_a_range_reaching_past_now_is_measured_up_to_now() -> None:
    now = datetime(2026, 11, 17, 15, 30, tzinfo=UTC)
    rng = report_range(date(2026, 11, 1), date(2026, 11, 30), TZ, now)
    assert rng.end == now and rng.points[-1].at == now and rng.generated_at == now


def test_a_year_end_range_crosses_into_the_next_year() -> None:
    rng = report_range(date(2026, 12, 1), date(2026, 12, 31), "UTC", LATER)
    assert [p.month for p in rng.points] == ["start", "2026-12"]
    assert rng.end == LATER


@pytest.mark.parametrize("first,last,message", [
    (date(2026, 12, 1), date(2026, 11, 30), "--from 2026-12-01 is after --to 2026-11-30"),
    (date(2027, 1, 1), date(2027, 1, 31), "--from 2027-01-01 is in the future (today is "
                                          "2026-12-31 in America/Toronto)"),
    (date(2010, 1, 1), date(2026, 1, 1), "a report covers at most 120 months"),
])
def test_impossible_ranges_are_refused_with_a_reason(first: date, last: date,
                                                     message: str) -> None:
    with pytest.raises(InvalidInput, match="^" + re.escape(message)):
        report_range(first, last, TZ, LATER)


@pytest.mark.parametrize("text", ["2026-02-30", "yesterday", "", "2026/02/01"])
def test_a_date_that_is_not_one_names_the_option(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--to: expected a date like 2026-11-30, got "):
        parse_day(text, "--to")


def test_the_previous_month_and_week_are_local() -> None:
    first_of_december_utc = datetime(2026, 12, 1, 3, tzinfo=UTC)  # still Nov 30 in Toronto
    assert previous_month(first_of_december_utc, TZ) == (date(2026, 10, 1), date(2026, 10, 31))
    assert previous_month(first_of_december_utc, "UTC") == (date(2026, 11, 1),
                                                            date(2026, 11, 30))
    monday = datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert previous_week(monday, TZ) == (date(2026, 11, 30), date(2026, 12, 6))
