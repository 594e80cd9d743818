"""The monthly amount of a renewal invoice: the definition, and the SQL that computes it for every
invoice at once, held equal on both backends."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Integer, String, literal, select

from billing.reports.mrr import AVERAGE_MONTH_SECONDS, fits, monthly_amount, monthly_amount_sql
from billing.store.engine import Store

DAY = 86400


def test_an_average_month_is_a_twelfth_of_the_gregorian_year() -> None:
    assert Fraction(AVERAGE_MONTH_SECONDS, DAY) == Fraction("365.2425") / 12


@pytest.mark.parametrize("days", [28, 29, 30, 31])
def test_a_monthly_price_is_its_mrr_whatever_the_month(days: int) -> None:
    assert monthly_amount(1900, days * DAY, "month", 1) == 1900


@pytest.mark.parametrize("hours", [-1, 0, 1])
def test_a_dst_change_does_not_change_a_weekly_amount(hours: int) -> None:
    # 18.50 a week x 30.436875 / 7 = 80.4403... -> 80.44
    assert monthly_amount(1850, 7 * DAY + hours * 3600, "week", 1) == 8044


def test_years_quarters_and_days() -> None:
    assert monthly_amount(49000, 366 * DAY, "year", 1) == 4083  # 408.333... -> 408.33
    assert monthly_amount(15000, 92 * DAY, "month", 3) == 5000
    assert monthly_amount(100, DAY, "day", 1) == 3044  # 1.00 a day: 30.436875 -> 30.44


def test_a_period_that_does_not_fit_the_interval_uses_its_own_length() -> None:
    # a monthly period normalised after a switch to an annual plan: 31 days of 30.44
    assert not fits("year", 1, 31 * DAY)
    assert monthly_amount(1900, 31 * DAY, "year", 1) == 1865  # 19.00 x 30.436875 / 31


def test_rounding_is_one_half_up_step() -> None:
    assert monthly_amount(1, 60 * DAY, "month", 2) == 1  # 0.5 -> 1
    assert monthly_amount(5, 2 * 31 * DAY, "month", 2) == 3  # 2.5 -> 3
    assert monthly_amount(0, 31 * DAY, "month", 1) == 0


CASES = st.tuples(
    st.integers(min_value=0, max_value=10**9),
    st.sampled_from(["day", "week", "month", "year"]),
    st.integers(min_value=1, max_value=12),
    st.one_of(st.integers(min_value=1, max_value=3 * 366 * DAY),  # anything
              st.integers(min_value=28, max_value=31).map(lambda d: d * DAY),  # months
              st.integers(min_value=1, max_value=4).map(lambda w: 7 * w * DAY + 3600)),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASES)
def test_the_sql_is_the_definition(store: Store, case: tuple[int, str, int, int]) -> None:
    amount, unit, count, seconds = case
    expr = monthly_amount_sql(literal(amount, BigInteger()), literal(seconds, BigInteger()),
                              literal(unit, String()), literal(count, Integer()))
    with store.engine.connect() as conn:
        assert conn.execute(select(expr)).scalar_one() == monthly_amount(
            amount, seconds, unit, count)
