"""Credits only from paid money: where the credit of a mid-period change goes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.domain.invoices import InvoiceStatus
from billing.domain.proration import CreditPlacement, PeriodInvoice, place_credit
from billing.errors import Conflict, InvalidInput

OPEN, PAID = InvoiceStatus.OPEN, InvoiceStatus.PAID


def test_a_paid_period_credits_the_balance() -> None:
    assert place_credit(1200, [PeriodInvoice("INV-1", PAID, 0, kept=4900)]) == CreditPlacement(
        (), 1200, 0)


def test_an_open_period_reduces_its_invoice_and_credits_nothing() -> None:
    assert place_credit(1200, [PeriodInvoice("INV-1", OPEN, 4900)]) == CreditPlacement(
        (("INV-1", 1200),), 0, 0)


@pytest.mark.parametrize("status", [InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.VOID])
def test_an_uncollectible_or_void_period_credits_nothing_at_all(status: InvoiceStatus) -> None:
    placed = place_credit(1200, [PeriodInvoice("INV-1", status, 4900),
                                 PeriodInvoice("INV-2", PAID, 0, kept=900)])
    assert (placed.reductions, placed.to_balance, placed.forfeited) == ((), 0, 1200)
    assert placed.why == f"INV-1 is {status.value}: nothing was paid for this period"


def test_a_charge_in_flight_refuses_the_change() -> None:
    with pytest.raises(Conflict) as info:
        place_credit(1200, [PeriodInvoice("INV-0000007", OPEN, 4900, charging=True)])
    assert str(info.value) == ("a charge for INV-0000007 is in progress; try again in a few "
                               "minutes")


def test_the_newest_open_invoice_is_reduced_first_and_never_below_zero() -> None:
    placed = place_credit(3000, [PeriodInvoice("INV-1", OPEN, 4900),
                                 PeriodInvoice("INV-2", OPEN, 1000)])
    assert placed.reductions == (("INV-2", 1000), ("INV-1", 2000))
    assert (placed.to_balance, placed.forfeited) == (0, 0)


def test_credit_balance_applied_to_an_open_invoice_is_paid_money_and_comes_back() -> None:
    # 38.00 billed, 30.00 of it paid from the balance: 8.00 owed. A 19.00 credit clears the 8.00
    # and returns 11.00 of the 30.00 already paid.
    placed = place_credit(1900, [PeriodInvoice("INV-1", OPEN, 800, kept=3000)])
    assert placed == CreditPlacement((("INV-1", 800),), 1100, 0)


def test_more_than_was_paid_is_forfeited_and_says_why() -> None:
    placed = place_credit(3000, [PeriodInvoice("INV-1", PAID, 0, kept=1000)])
    assert (placed.to_balance, placed.forfeited) == (1000, 2000)
    assert placed.why == "more than was paid for this period"
    nothing = place_credit(500, [])
    assert (nothing.to_balance, nothing.forfeited, nothing.why) == (
        0, 500, "nothing was paid for this period yet")


def test_a_credit_must_be_positive() -> None:
    with pytest.raises(InvalidInput):
        place_credit(0, [])


invoices = st.lists(st.builds(
    PeriodInvoice, number=st.uuids().map(str), status=st.sampled_from(list(InvoiceStatus)),
    total=st.integers(0, 10**9), kept=st.integers(0, 10**9), charging=st.booleans()),
    max_size=5)


@settings(max_examples=500)
@given(credit=st.integers(1, 10**9), period=invoices)
def test_a_credit_is_placed_whole_and_only_ever_from_paid_money(
    credit: int, period: list[PeriodInvoice]
) -> None:
    try:
        placed = place_credit(credit, period)
    except Conflict:
        assert any(i.charging and i.status is OPEN for i in period)
        return
    assert placed.reduced + placed.to_balance + placed.forfeited == credit
    assert min([placed.to_balance, placed.forfeited, *(a for _, a in placed.reductions)],
               default=0) >= 0
    owed = {i.number: i.total for i in period if i.status is OPEN}
    for number, amount in placed.reductions:
        assert 0 < amount <= owed.pop(number)  # each open invoice at most once, never below 0
    assert placed.to_balance <= sum(i.kept for i in period)
    if any(i.status in (InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.VOID) for i in period):
        assert placed == CreditPlacement((), 0, credit, placed.why)
    if placed.to_balance:  # the balance is only credited once the open invoices are cleared
        assert all(i.total == dict(placed.reductions).get(i.number) for i in period
                   if i.status is OPEN and i.total)
