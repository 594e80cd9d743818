"""Money: exact integer minor units, strict catalog parsing, one rounding step for proration."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, Rounded, localcontext
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from billing.domain import money
from billing.domain.money import EXPONENTS, ROUNDING, Money, round_half_up
from billing.errors import InvalidInput

currencies = st.sampled_from(sorted(EXPONENTS))
# Unbounded integers plus a range that reaches well past Decimal's default 28-digit precision.
amounts = st.one_of(st.integers(), st.integers(min_value=-(10**60), max_value=10**60))
ratios = st.fractions(min_value=-3, max_value=3, max_denominator=10**9)

EXACT = Context(prec=500, traps=[Inexact, Rounded])
"""Decimal arithmetic that raises instead of rounding, used as the independent oracle."""


@st.composite
def decimal_strings(draw: st.DrawFn, min_places: int, max_places: int) -> str:
    """A catalog-style decimal string like ``-29.00`` with ``min..max`` digits after the point."""
    sign = draw(st.sampled_from(["", "-", "+"]))
    whole = draw(st.one_of(st.integers(0, 10**6), st.integers(0, 10**40)))
    places = draw(st.integers(min_places, max_places))
    fraction = draw(st.text("0123456789", min_size=places, max_size=places))
    pad = draw(st.sampled_from(["", " ", "  \t"]))
    return f"{pad}{sign}{whole}" + (f".{fraction}" if places else "") + pad


def minor_units_by_decimal(text: str, currency: str) -> int:
    with localcontext(EXACT):
        scaled = Decimal(text.strip()) * (10 ** EXPONENTS[currency])
        assert scaled == scaled.to_integral_value()
        return int(scaled)


# --- worked examples ---------------------------------------------------------------------------


def test_catalog_string_29_00_is_2900_cents() -> None:
    assert Money.parse("29.00", "CAD") == Money(2900, "CAD")
    assert Money.parse("29.5", "CAD") == Money(2950, "CAD")
    assert Money.parse("29", "CAD") == Money(2900, "CAD")
    assert Money.parse(2900, "CAD") == Money(2900, "CAD")


@pytest.mark.parametrize("text", ["29.999", "29.990", "0.001", "-0.000"])
def test_catalog_strings_with_three_places_are_rejected_even_when_the_last_is_zero(
    text: str,
) -> None:
    with pytest.raises(InvalidInput, match="decimal places"):
        Money.parse(text, "CAD")


def test_an_absurdly_large_exponent_is_invalid_input_not_a_decimal_crash() -> None:
    with pytest.raises(InvalidInput, match="too large"):
        Money.parse("1E+999999", "CAD")


def test_yen_has_no_minor_digits() -> None:
    assert Money.parse("1500", "JPY") == Money(1500, "JPY")
    assert Money(1500, "JPY").format() == "1500 JPY"
    with pytest.raises(InvalidInput):
        Money.parse("1500.5", "JPY")


def test_format_shows_major_units_and_currency() -> None:
    assert Money(2900, "CAD").format() == "29.00 CAD"
    assert Money(-5, "CAD").format() == "-0.05 CAD"
    assert str(Money(123456, "USD")) == "1234.56 USD"
    assert Money(2900, "CAD").decimal() == Decimal("29.00")


def test_amounts_beyond_28_digits_format_and_parse_exactly() -> None:
    huge = Money(10**30 + 1, "CAD")
    assert huge.decimal() == Decimal("10000000000000000000000000000.01")
    assert huge.format() == "10000000000000000000000000000.01 CAD"
    assert Money.parse("12345678901234567890123456789.01", "CAD").amount == (
        1234567890123456789012345678901
    )


def test_a_float_price_in_the_catalog_is_refused() -> None:
    with pytest.raises(InvalidInput, match="quoted decimal string"):
        Money.parse(29.0, "CAD")


def test_unknown_currency_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unknown currency"):
        Money(100, "XYZ")
    with pytest.raises(InvalidInput, match="unknown currency"):
        Money.parse("1.00", "cad")


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "NaN", "sNaN", "Infinity", "-inf", "$29.00"])
def test_non_decimal_strings_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput):
        Money.parse(text, "CAD")


@pytest.mark.parametrize("value", [None, Decimal("29.00"), Fraction(29), [2900], b"29.00"])
def test_other_types_are_invalid_input(value: object) -> None:
    with pytest.raises(InvalidInput):
        Money.parse(value, "CAD")


def test_adding_different_currencies_is_refused() -> None:
    with pytest.raises(InvalidInput, match="cannot combine CAD with USD"):
        Money(1, "CAD") + Money(1, "USD")
    with pytest.raises(InvalidInput, match="cannot combine USD with CAD"):
        Money(1, "USD") - Money(1, "CAD")


def test_money_is_frozen() -> None:
    price = Money(2900, "CAD")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(price, "amount", 1)  # noqa: B010 - assigning directly is what must fail


def test_rounding_is_half_away_from_zero() -> None:
    assert ROUNDING == ROUND_HALF_UP
    assert round_half_up(Fraction(5, 2)) == 3  # banker's rounding would give 2
    assert round_half_up(Fraction(-5, 2)) == -3
    assert round_half_up(Fraction(1, 2)) == 1
    assert round_half_up(Fraction(-1, 2)) == -1
    assert round_half_up(Fraction(49, 100)) == 0
    assert round_half_up(Fraction(-149, 100)) == -1


def test_half_a_cent_of_proration_rounds_up() -> None:
    # 1 cent for half a period is 0.5 cents: one customer-visible rounding step, away from zero.
    assert Money(1, "CAD").prorate(Fraction(1, 2)) == Money(1, "CAD")
    assert Money(-1, "CAD").prorate(Fraction(1, 2)) == Money(-1, "CAD")
    # 29.00 for 10 days of a 31-day month is 9.354838... -> 9.35
    assert Money(2900, "CAD").prorate(Fraction(10, 31)) == Money(935, "CAD")


def test_money_module_has_no_float_literals_or_conversions() -> None:
    tree = ast.parse(inspect.getsource(money))
    floats = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
              and isinstance(n.value, float)]
    calls = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id == "float"]
    assert floats == [] and calls == []


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=300)
@given(amount=amounts, currency=currencies)
@example(amount=10**30 + 1, currency="CAD")
def test_parse_round_trips_format_for_any_int_amount(amount: int, currency: str) -> None:
    price = Money(amount, currency)
    text, code = price.format().split(" ")
    assert code == currency
    assert Money.parse(text, currency) == price
    with localcontext(EXACT):
        assert price.decimal() * (10 ** EXPONENTS[currency]) == amount


@settings(max_examples=300)
@given(currency=currencies, data=st.data())
def test_parse_of_decimal_strings_within_the_currency_digits_is_exact(
    currency: str, data: st.DataObject
) -> None:
    text = data.draw(decimal_strings(0, EXPONENTS[currency]))
    assert Money.parse(text, currency) == Money(minor_units_by_decimal(text, currency), currency)


@settings(max_examples=200)
@given(currency=currencies, data=st.data())
def test_parse_of_more_places_than_the_currency_allows_is_invalid(
    currency: str, data: st.DataObject
) -> None:
    digits = EXPONENTS[currency]
    text = data.draw(decimal_strings(digits + 1, digits + 6))
    with pytest.raises(InvalidInput, match="decimal places"):
        Money.parse(text, currency)


# Exponents stay short: "1E+999990" is accepted but takes seconds to expand (see the report).
number_like = st.from_regex(r"\s?[-+]?[0-9]{1,6}(\.[0-9]{0,4})?([eE][-+]?[0-9]{1,3})?\s?",
                            fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=12), number_like))
@example(text="1E+999999")
@example(text="-1e999999999")
def test_parse_of_any_text_gives_money_or_invalid_input(text: str) -> None:
    try:
        price = Money.parse(text, "CAD")
    except InvalidInput:
        return
    with localcontext(EXACT):
        assert Decimal(text.strip()) * 100 == price.amount


@given(value=st.floats(allow_nan=True, allow_infinity=True), currency=currencies)
def test_floats_are_never_money(value: float, currency: str) -> None:
    with pytest.raises(InvalidInput):
        Money.parse(value, currency)
    with pytest.raises(InvalidInput):
        Money(value, currency)  # type: ignore[arg-type]


@pytest.mark.parametrize("flag", [True, False])
def test_bools_are_never_money(flag: bool) -> None:
    with pytest.raises(InvalidInput):
        Money.parse(flag, "CAD")
    with pytest.raises(InvalidInput):
        Money(flag, "CAD")


@given(value=st.one_of(st.decimals(allow_nan=False), st.fractions(), st.text(max_size=5)))
def test_the_constructor_takes_only_whole_minor_units(value: object) -> None:
    with pytest.raises(InvalidInput):
        Money(value, "CAD")  # type: ignore[arg-type]


@given(a=amounts, b=amounts, currency=currencies)
def test_add_and_sub_are_exact(a: int, b: int, currency: str) -> None:
    x, y = Money(a, currency), Money(b, currency)
    assert x + y == Money(a + b, currency)
    assert x - y == Money(a - b, currency)
    assert (x + y) - y == x
    assert x - y == x + (-y)
    assert (x + y).currency == currency


@given(a=amounts, b=amounts, first=currencies, second=currencies)
def test_add_and_sub_refuse_mixed_currencies(a: int, b: int, first: str, second: str) -> None:
    if first == second:
        return
    with pytest.raises(InvalidInput):
        Money(a, first) + Money(b, second)
    with pytest.raises(InvalidInput):
        Money(a, first) - Money(b, second)


@given(amount=amounts, quantity=st.integers(-1000, 1000))
def test_times_multiplies_exactly(amount: int, quantity: int) -> None:
    assert Money(amount, "CAD").times(quantity) == Money(amount * quantity, "CAD")


@settings(max_examples=300)
@given(amount=amounts, ratio=ratios, currency=currencies)
def test_prorate_is_the_exact_fraction_rounded_half_away_from_zero(
    amount: int, ratio: Fraction, currency: str
) -> None:
    exact = Fraction(amount) * ratio
    # Independent statement of the rule: whole part, plus one when the remainder is at least half.
    whole, remainder = divmod(abs(exact.numerator), exact.denominator)
    expected = whole + (1 if 2 * remainder >= exact.denominator else 0)
    if exact < 0:
        expected = -expected
    result = Money(amount, currency).prorate(ratio)
    assert result == Money(expected, currency)
    assert abs(Fraction(result.amount) - exact) <= Fraction(1, 2)


@given(amount=amounts, currency=currencies)
def test_prorate_by_one_is_identity_and_by_zero_is_zero(amount: int, currency: str) -> None:
    price = Money(amount, currency)
    assert price.prorate(Fraction(1)) == price
    assert price.prorate(Fraction(0)) == Money.zero(currency)


@settings(max_examples=300)
@given(
    amount=st.integers(-(10**9), 10**9),
    period_seconds=st.integers(1, 400 * 86400),
    data=st.data(),
)
def test_prorated_parts_of_a_split_period_differ_from_the_whole_by_at_most_one_unit(
    amount: int, period_seconds: int, data: st.DataObject
) -> None:
    used = data.draw(st.integers(0, period_seconds))
    price = Money(amount, "CAD")
    first = price.prorate(Fraction(used, period_seconds))
    second = price.prorate(Fraction(period_seconds - used, period_seconds))
    assert abs((first + second - price).amount) <= 1


@given(amount=st.integers(0, 10**12), a=ratios, b=ratios)
def test_prorate_is_monotonic_in_the_ratio(amount: int, a: Fraction, b: Fraction) -> None:
    low, high = sorted((a, b))
    price = Money(amount, "CAD")
    assert price.prorate(low).amount <= price.prorate(high).amount


@settings(max_examples=500)
@given(
    numerator=st.integers(-(10**30), 10**30),
    denominator=st.one_of(st.integers(1, 10**12), st.sampled_from([1, 2, 4, 8, 10, 100, 1000])),
)
@example(numerator=5, denominator=2)
@example(numerator=-5, denominator=2)
@example(numerator=-1, denominator=2)
def test_round_half_up_matches_decimal_quantize(numerator: int, denominator: int) -> None:
    value = Fraction(numerator, denominator)
    # Enough digits that the quotient lands on the same side of every half as the exact value
    # (an exact half has denominator 2 and is represented exactly).
    digits = len(str(abs(value.numerator) // value.denominator)) + len(str(value.denominator)) + 5
    with localcontext(Context(prec=digits)):
        quotient = Decimal(value.numerator) / Decimal(value.denominator)
        expected = quotient.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert round_half_up(value) == int(expected)


def test_amounts_of_different_currencies_cannot_be_ordered() -> None:
    import pytest

    from billing.domain.money import Money
    from billing.errors import InvalidInput

    with pytest.raises(InvalidInput, match="cannot combine"):
        _ = Money(100, "USD") < Money(200, "CAD")
    assert Money(100, "CAD") < Money(200, "CAD")
    assert Money(300, "CAD") >= Money(200, "CAD")
