"""Proration, the reconcile backoff and order numbers: the pure rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.domain.calendar import BillingCalendar, Interval, IntervalUnit
from billing.domain.money import Money
from billing.domain.payments import NONCE_ALPHABET, NONCE_LENGTH, next_check, order_number
from billing.domain.proration import prorate_change
from billing.errors import InvalidInput

AT = datetime(2026, 1, 20, tzinfo=UTC)


MONTHLY = BillingCalendar(date(2026, 1, 1), Interval(IntervalUnit.MONTH), "UTC")


def test_upgrade_with_ten_of_thirty_days_left_charges_a_third_of_the_difference() -> None:
    period = BillingCalendar(date(2026, 4, 1), Interval(IntervalUnit.MONTH), "UTC").period(0)
    change = prorate_change(period, datetime(2026, 4, 21, tzinfo=UTC), Money(1000, "CAD"),
                            Money(4000, "CAD"))
    assert change.ratio == Fraction(1, 3) and change.net == Money(1000, "CAD")


def test_downgrade_mid_period_is_a_credit() -> None:
    period = MONTHLY.period(0)
    change = prorate_change(period, datetime(2026, 1, 16, 12, tzinfo=UTC), Money(3100, "CAD"),
                            Money(0, "CAD"))
    assert change.net == Money(-1550, "CAD")


def test_proration_outside_the_period_is_refused() -> None:
    with pytest.raises(InvalidInput):
        prorate_change(MONTHLY.period(0), datetime(2026, 3, 1, tzinfo=UTC), Money(1, "CAD"),
                       Money(2, "CAD"))


@given(st.integers(min_value=0, max_value=31 * 86400 - 1),
       st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=10**7))
def test_proration_is_exact_to_the_second_and_rounded_once(
    offset: int, old: int, new: int
) -> None:
    period = MONTHLY.period(0)
    at = period.start + timedelta(seconds=offset)
    change = prorate_change(period, at, Money(old, "CAD"), Money(new, "CAD"))
    exact = Fraction(new - old) * Fraction(period.seconds - offset, period.seconds)
    assert abs(Fraction(change.net.amount) - exact) <= Fraction(1, 2)
    back = prorate_change(period, at, Money(new, "CAD"), Money(old, "CAD"))
    assert abs(change.net.amount + back.net.amount) <= 1


def test_reconcile_backoff_grows_then_stays_daily() -> None:
    gaps = [next_check(AT, n) - AT for n in range(6)]
    assert gaps[:4] == [timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=1),
                        timedelta(days=1)]
    assert gaps[4] == gaps[5] == timedelta(days=1)


NONCES = st.text(alphabet=NONCE_ALPHABET, min_size=NONCE_LENGTH, max_size=NONCE_LENGTH)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=6, max_size=6),
       st.integers(min_value=1, max_value=999_999_999_999), st.integers(min_value=1, max_value=99),
       NONCES, NONCES)
def test_order_numbers_fit_the_gateway_and_never_collide(prefix: str, invoice: int,
                                                         attempt: int, nonce: str,
                                                         other: str) -> None:
    number = order_number(prefix, invoice, attempt, nonce)
    assert len(number) <= 30
    assert number != order_number(prefix, invoice, attempt + 1, nonce)
    assert number != order_number(prefix, invoice + 1, attempt, nonce)
    # a restored database reissues the same invoice id and attempt number, never the same nonce
    assert (number == order_number(prefix, invoice, attempt, other)) is (nonce == other)


def test_an_order_nonce_must_be_base_32() -> None:
    with pytest.raises(ValueError, match="base-32"):
        order_number("K3F9QZ", 1, 1, "abc")
