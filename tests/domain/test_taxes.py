"""Taxes: exclusive rates per province, one rounding per tax, totals that add up."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.domain.money import MAX_CHARGE, Money
from billing.domain.plans import check_billable
from billing.domain.taxes import (
    TaxRate,
    apply_taxes,
    check_province,
    format_percent,
    parse_percent,
    refunded_taxes,
    with_taxes,
)
from billing.errors import InvalidInput

QC = (TaxRate("GST", Decimal("5")), TaxRate("QST", Decimal("9.975")))

percents = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99.9999"), places=4)
rate_lists = st.lists(percents, max_size=4).map(
    lambda ps: tuple(TaxRate(f"T{i}", p) for i, p in enumerate(ps)))
subtotals = st.integers(min_value=0, max_value=10**12)


@st.composite
def subtotal_and_credit(draw: st.DrawFn) -> tuple[int, int]:
    subtotal = draw(subtotals)
    return subtotal, draw(st.integers(min_value=0, max_value=subtotal))


def test_quebec_worked_example_from_the_module_docstring() -> None:
    taxed = apply_taxes(4900, 1200, QC)
    assert [(t.name, t.taxable, t.amount) for t in taxed.lines] == [
        ("GST", 3700, 185), ("QST", 3700, 369)]
    assert (taxed.tax, taxed.total) == (554, 4254)


@given(subtotal_and_credit(), rate_lists)
def test_each_tax_is_the_exact_product_rounded_once_half_up(sc: tuple[int, int],
                                                            rates: tuple[TaxRate, ...]) -> None:
    subtotal, credit = sc
    taxed = apply_taxes(subtotal, credit, rates)
    for rate, line in zip(rates, taxed.lines, strict=True):
        exact = Fraction(subtotal - credit) * Fraction(rate.percent) / 100
        # one rounding: within half a minor unit of the exact tax, halves going up
        assert abs(Fraction(line.amount) - exact) <= Fraction(1, 2)
        if exact - int(exact) == Fraction(1, 2):
            assert line.amount == int(exact) + 1
        assert line.taxable == subtotal - credit


@given(subtotal_and_credit(), rate_lists)
def test_taxes_are_never_negative_and_the_total_adds_up(sc: tuple[int, int],
                                                        rates: tuple[TaxRate, ...]) -> None:
    subtotal, credit = sc
    taxed = apply_taxes(subtotal, credit, rates)
    assert all(line.amount >= 0 for line in taxed.lines)
    assert taxed.tax == sum(line.amount for line in taxed.lines)
    assert taxed.total == subtotal - credit + taxed.tax >= 0


@given(subtotal_and_credit())
def test_no_rates_is_the_untaxed_invoice(sc: tuple[int, int]) -> None:
    subtotal, credit = sc
    taxed = apply_taxes(subtotal, credit, ())
    assert (taxed.lines, taxed.tax, taxed.total) == ((), 0, subtotal - credit)


@given(subtotals, subtotals, rate_lists)
def test_tax_only_grows_with_the_taxable_amount(a: int, b: int,
                                                rates: tuple[TaxRate, ...]) -> None:
    """What ``check_billable`` relies on: the largest subtotal has the largest taxed total."""
    low, high = sorted((a, b))
    assert apply_taxes(low, 0, rates).total <= apply_taxes(high, 0, rates).total


@pytest.mark.parametrize("subtotal,credit", [(-1, 0), (100, 101), (100, -1)])
def test_impossible_amounts_are_refused(subtotal: int, credit: int) -> None:
    with pytest.raises(InvalidInput):
        apply_taxes(subtotal, credit, QC)


def test_a_tax_named_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match="named twice"):
        apply_taxes(100, 0, (TaxRate("GST", Decimal(5)), TaxRate("GST", Decimal(5))))


@pytest.mark.parametrize("text,rate", [("5", "5"), ("9.975", "9.975"), (" 13 ", "13"),
                                       (15, "15"), ("5.000", "5")])
def test_rates_are_exact_percents(text: object, rate: str) -> None:
    assert format_percent(parse_percent(text)) == rate


@pytest.mark.parametrize("text,why", [
    (9.975, "quoted decimal string"), ("abc", "not a decimal"), ("0", "above 0"),
    ("100", "below 100"), ("-5", "above 0"), ("1.00001", "decimal places"), ("NaN", "not a"),
    (True, "quoted decimal"), (None, "whole number or a decimal string"),
])
def test_rates_that_are_not_exact_percents_are_refused(text: object, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        parse_percent(text)


def test_provinces_are_two_letter_codes() -> None:
    assert check_province("qc") == "QC"
    with pytest.raises(InvalidInput, match="one of AB"):
        check_province("Quebec")


def test_a_taxed_period_must_fit_in_one_charge() -> None:
    """Untaxed, the price fits; taxed at 14.975 %, it would be more than one charge can be."""
    price = Money(MAX_CHARGE - 100, "CAD")
    assert check_billable(price, 1) == price
    with pytest.raises(InvalidInput, match=r"GST 5%, QST 9\.975%"):
        check_billable(price, 1, taxes=QC)
    fits = Money(int(MAX_CHARGE / Decimal("1.14975")) - 1, "CAD")
    assert with_taxes(fits, QC).amount <= MAX_CHARGE
    check_billable(fits, 1, taxes=QC)


def test_refund_worked_example_from_the_docstring() -> None:
    paid = apply_taxes(7400, 0, QC)
    assert [(t.name, t.amount) for t in refunded_taxes(5000, paid.total, paid.lines)] == [
        ("GST", 217), ("QST", 434)]


@given(subtotal_and_credit(), rate_lists, st.data())
def test_a_refund_gives_back_a_share_of_each_tax_and_a_whole_refund_all_of_it(
        sc: tuple[int, int], rates: tuple[TaxRate, ...], data: st.DataObject) -> None:
    paid = apply_taxes(*sc, rates)
    if paid.total == 0:
        return
    refund = data.draw(st.integers(min_value=0, max_value=paid.total))
    back = refunded_taxes(refund, paid.total, paid.lines)
    for line, part in zip(paid.lines, back, strict=True):
        assert 0 <= part.amount <= line.amount
        assert abs(Fraction(part.amount) - Fraction(line.amount * refund, paid.total)) <= \
            Fraction(1, 2)
    whole = refunded_taxes(paid.total, paid.total, paid.lines)
    assert [p.amount for p in whole] == [line.amount for line in paid.lines]
