"""Sales taxes on an invoice: exclusive rates per customer province, each rounded once.

Canadian style: several named taxes may apply in one province (QC: GST 5 % and QST 9.975 %),
each computed on the same taxable amount (none is charged on another: no compounding), and each
rounded once, with ``money.ROUNDING``, to whole minor units. The rates are exact decimals of a
percent (``Decimal("9.975")``), never floats.

The taxable amount is the invoice's lines (plan, proration, setup fee) **less the credit balance
applied**. A credit balance here only ever holds the unused part of a period the customer paid
for (``proration.place_credit``), so it is a price reduction carried forward, and the tax on it
is given back with it, exactly as a negative proration line on an open invoice reduces its tax.

Worked example: a 49.00 subtotal in QC with 12.00 of credit is taxable on 37.00: GST
1.85, QST 3.69075 rounded to 3.69, so the total is 37.00 + 5.54 = 42.54.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from billing.domain.money import Money, check_chargeable, round_half_up
from billing.errors import InvalidInput

PROVINCES: tuple[str, ...] = (
    "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
)
"""Canada's provinces and territories, by their two-letter postal codes."""

MAX_RATE_DECIMALS = 4
"""Digits after the point in a percent: 9.975 needs three; more is a typo."""


def check_province(value: str) -> str:
    """Return ``value`` (upper-cased) if it is one of ``PROVINCES``."""
    code = value.strip().upper()
    if code not in PROVINCES:
        raise InvalidInput(f"province must be one of {', '.join(PROVINCES)} (got {value!r})")
    return code


def parse_percent(value: object) -> Decimal:
    """Read a rate written as a percent: an integer or an exact decimal string.

    >>> parse_percent("9.975")
    Decimal('9.975')

    A float (``9.975`` unquoted in YAML) is refused like an amount is, since the YAML parser
    has already rounded it to binary; so are negatives, 100 % or more, and more than
    ``MAX_RATE_DECIMALS`` digits after the point.
    """
    if isinstance(value, bool | float):
        raise InvalidInput(f"write a rate as a quoted decimal string like \"9.975\" "
                           f"(got the number {value!r})")
    if not isinstance(value, int | str):
        raise InvalidInput(f"a rate must be a whole number or a decimal string (got {value!r})")
    try:
        rate = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidInput(f"not a decimal rate: {value!r}") from None
    exp = rate.as_tuple().exponent
    if not rate.is_finite() or not isinstance(exp, int):
        raise InvalidInput(f"not a decimal rate: {value!r}")
    if -exp > MAX_RATE_DECIMALS:
        raise InvalidInput(f"{value!r} has more than {MAX_RATE_DECIMALS} decimal places")
    if not Decimal(0) < rate < Decimal(100):
        raise InvalidInput(f"a rate is a percent above 0 and below 100 (got {value!r})")
    return rate


@dataclass(frozen=True)
class TaxRate:
    """One named tax and its rate in percent, as it applies in one province."""

    name: str
    percent: Decimal

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInput("a tax needs a name")
        parse_percent(str(self.percent))

    def on(self, taxable: int) -> int:
        """This tax on ``taxable`` minor units, rounded once (``money.ROUNDING``)."""
        return round_half_up(Fraction(taxable) * Fraction(self.percent) / 100)

    @property
    def label(self) -> str:
        """``QST 9.975%``: the name with the rate as written, without trailing zeros."""
        return f"{self.name} {format_percent(self.percent)}%"


def format_percent(percent: Decimal) -> str:
    """``Decimal("5.000")`` -> ``5``; ``Decimal("9.975")`` -> ``9.975``."""
    text = format(percent.normalize(), "f")
    return text


@dataclass(frozen=True)
class TaxLine:
    """One tax on one invoice: its rate, the amount it was computed on, and its amount."""

    name: str
    percent: Decimal
    taxable: int
    amount: int


@dataclass(frozen=True)
class Taxed:
    """An invoice's amounts: ``total = subtotal - credit + tax``, every part whole minor units."""

    subtotal: int
    credit: int
    lines: tuple[TaxLine, ...]

    @property
    def taxable(self) -> int:
        return self.subtotal - self.credit

    @property
    def tax(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal - self.credit + self.tax


def apply_taxes(subtotal: int, credit: int, rates: Sequence[TaxRate]) -> Taxed:
    """Tax ``subtotal - credit`` at each of ``rates``, one rounding per tax.

    No rates gives no tax lines and ``total = subtotal - credit``: an invoice of a customer
    without a province, or of a catalog without taxes, is exactly what it was before taxes.
    """
    if subtotal < 0 or not 0 <= credit <= subtotal:
        raise InvalidInput(f"cannot tax a subtotal of {subtotal} with {credit} credited")
    names = [rate.name for rate in rates]
    if len(set(names)) != len(names):
        raise InvalidInput(f"a tax is named twice: {', '.join(names)}")
    taxable = subtotal - credit
    return Taxed(subtotal, credit, tuple(
        TaxLine(rate.name, rate.percent, taxable, rate.on(taxable)) for rate in rates))


def with_taxes(amount: Money, rates: Sequence[TaxRate]) -> Money:
    """``amount`` plus every tax on it. Each tax only grows with what it is computed on, so the
    largest taxable amount an invoice can have gives its largest total."""
    return Money(apply_taxes(amount.amount, 0, rates).total, amount.currency) \
        if amount.amount >= 0 else amount


def check_taxed_chargeable(amount: Money, rates: Sequence[TaxRate], what: str) -> Money:
    """``amount`` with its taxes, refused (``InvalidInput``) past what one charge can be."""
    taxed = with_taxes(amount, rates)
    if taxed.amount and rates:
        check_chargeable(taxed, f"{what} with {', '.join(r.label for r in rates)}")
    return taxed


def refunded_taxes(refund: int, total: int, lines: Sequence[TaxLine]) -> tuple[TaxLine, ...]:
    """The part of each tax a refund of ``refund`` out of ``total`` gives back, for its credit note.

    A refund returns the same share of every part of what was paid, so each tax's share is
    ``tax x refund / total``, rounded once. A whole refund (or a void) gives back each tax
    exactly; no share is ever more than the tax. ``taxable`` is the refunded price before tax.

    Worked example: 50.00 back out of 85.08 paid with GST 3.70 and QST 7.38 gives back
    2.17 (2.1744) of GST and 4.34 (4.3371) of QST.
    """
    if total <= 0 or not 0 <= refund <= total:
        raise InvalidInput(f"cannot refund {refund} of {total}")
    share = Fraction(refund, total)
    taxable = sum(line.taxable for line in lines[:1])
    return tuple(TaxLine(line.name, line.percent, round_half_up(taxable * share),
                         round_half_up(line.amount * share)) for line in lines)
