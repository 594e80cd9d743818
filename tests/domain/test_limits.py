"""What the gateway can charge: one payment is 1..2**31-1 cents, so every invoice a subscription
can issue must fit, whatever quantity or price was typed."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from billing.domain.calendar import BillingCalendar, Interval, IntervalUnit
from billing.domain.money import MAX_CHARGE, Money, check_chargeable, max_charge
from billing.domain.plans import MAX_QUANTITY, check_billable, check_quantity
from billing.domain.proration import prorate_change
from billing.errors import InvalidInput

CAD = "CAD"
prices = st.one_of(st.integers(0, 10**4), st.integers(0, MAX_CHARGE), st.integers(0, 10**15))
quantities = st.one_of(st.integers(1, 100), st.integers(-5, MAX_QUANTITY + 5),
                       st.integers(-(10**30), 10**30))
fees = st.one_of(st.none(), st.integers(0, 10**4), st.integers(0, 10**12))


def test_the_limit_is_the_gateways_signed_32_bit_cents() -> None:
    assert MAX_CHARGE == 2_147_483_647
    assert max_charge(CAD).format() == "21474836.47 CAD"


def test_one_cent_and_the_limit_are_chargeable_and_their_neighbours_are_not() -> None:
    assert check_chargeable(Money(1, CAD)) == Money(1, CAD)
    assert check_chargeable(Money(MAX_CHARGE, CAD)) == Money(MAX_CHARGE, CAD)
    with pytest.raises(InvalidInput, match=r"at least 0\.01 CAD \(got 0\.00 CAD\)"):
        check_chargeable(Money(0, CAD))
    with pytest.raises(InvalidInput, match=r"^the invoice would be 21474836\.48 CAD, more than "
                                           r"the 21474836\.47 CAD the gateway can charge"):
        check_chargeable(Money(MAX_CHARGE + 1, CAD), "the invoice")


def test_the_finding_quantity_is_refused_with_the_range() -> None:
    with pytest.raises(InvalidInput, match=r"quantity must be between 1 and 1000000 "
                                           r"\(got 99999999999\)"):
        check_billable(Money(1900, CAD), 99_999_999_999)


def test_price_times_quantity_plus_setup_fee_over_the_limit_names_every_part() -> None:
    with pytest.raises(InvalidInput) as info:
        check_billable(Money(4900, CAD), 1_000_000, Money(2500, CAD))
    assert str(info.value) == (
        "one period of 1000000 x 49.00 CAD plus the 25.00 CAD setup fee would be "
        "49000025.00 CAD, more than the 21474836.47 CAD the gateway can charge in one payment")


@pytest.mark.parametrize("quantity", [0, -1, True, 2.0])
def test_quantities_that_are_not_positive_whole_numbers_are_refused(quantity: object) -> None:
    with pytest.raises(InvalidInput, match="quantity must be"):
        check_quantity(quantity)  # type: ignore[arg-type]


def test_a_free_plan_is_billable_at_any_allowed_quantity() -> None:
    assert check_billable(Money(0, CAD), MAX_QUANTITY) == Money(0, CAD)


def _invoice_totals(price: int, quantity: int, fee: int | None, periods: int) -> list[int]:
    """What renewal issues for these terms: the first period with the setup fee, then periods."""
    first = price * quantity + (fee or 0)
    return [first] + [price * quantity] * (periods - 1)


@settings(max_examples=400)
@given(price=prices, quantity=quantities, fee=fees)
@example(price=1900, quantity=99_999_999_999, fee=None)
@example(price=MAX_CHARGE, quantity=1, fee=None)
@example(price=MAX_CHARGE, quantity=1, fee=1)
@example(price=0, quantity=MAX_QUANTITY, fee=MAX_CHARGE)
def test_accepted_terms_never_issue_an_invoice_the_gateway_cannot_charge(
    price: int, quantity: int, fee: int | None
) -> None:
    setup = Money(fee, CAD) if fee is not None else None
    try:
        largest = check_billable(Money(price, CAD), quantity, setup)
    except InvalidInput:
        # Refused only for a reason: the quantity is out of range or some invoice would not fit.
        assert not 1 <= quantity <= MAX_QUANTITY or max(
            _invoice_totals(price, quantity, fee, 2)) > MAX_CHARGE
        return
    assert 1 <= quantity <= MAX_QUANTITY
    totals = _invoice_totals(price, quantity, fee, 3)
    assert largest.amount == max(totals)
    assert all(0 <= t <= MAX_CHARGE for t in totals)
    for total in totals:
        if total:
            check_chargeable(Money(total, CAD))


@settings(max_examples=200)
@given(old=st.integers(0, MAX_CHARGE), new=st.integers(0, MAX_CHARGE),
       into=st.fractions(min_value=0, max_value=1, max_denominator=10**6)
       .filter(lambda f: f < 1))
def test_a_proration_between_accepted_terms_fits_the_limit(old: int, new: int,
                                                           into: Fraction) -> None:
    calendar = BillingCalendar(date(2026, 1, 31), Interval(IntervalUnit.MONTH), "UTC")
    period = calendar.period(0)
    at = period.start + timedelta(seconds=int(period.seconds * into))
    change = prorate_change(period, at, Money(old, CAD), Money(new, CAD))
    assert abs(change.net.amount) <= MAX_CHARGE
