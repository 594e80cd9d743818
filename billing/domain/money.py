"""Money as integer minor units plus an ISO 4217 currency, and the one place amounts are rounded.

Floats never represent money here. Ratios (proration) are exact ``Fraction``s turned into minor
units by ``Money.prorate`` with a single named rounding rule, ``ROUNDING``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import MAX_PREC, ROUND_HALF_UP, Context, Decimal, DecimalException, InvalidOperation
from fractions import Fraction

from billing.errors import InvalidInput

# Minor-unit exponent per currency. The gateway only takes CAD today; the rest keep the type honest.
EXPONENTS: dict[str, int] = {"CAD": 2, "USD": 2, "EUR": 2, "GBP": 2, "CNY": 2, "JPY": 0}

ROUNDING = ROUND_HALF_UP
"""Half a cent rounds away from zero, as a customer reading the invoice would do it by hand."""

_SHIFT = Context(prec=MAX_PREC)
"""Moving the decimal point must not round: the default context keeps only 28 significant digits."""

MAX_CHARGE = 2**31 - 1
"""The most one charge may be, in minor units. The gateway's ``amount`` is a signed 32-bit
``Int`` of cents, so 21,474,836.47 CAD is the largest amount it can take in one payment; an
invoice above it could never be collected, so nothing that issues one may be accepted."""


def round_half_up(value: Fraction) -> int:
    """Round an exact ratio to a whole number, halves away from zero (``ROUNDING``), exactly."""
    magnitude = abs(value)
    whole = (magnitude.numerator * 2 + magnitude.denominator) // (2 * magnitude.denominator)
    return whole if value >= 0 else -whole


def exponent(currency: str) -> int:
    """Digits after the decimal point for ``currency``; unknown codes are an input error."""
    try:
        return EXPONENTS[currency]
    except KeyError:
        known = ", ".join(sorted(EXPONENTS))
        raise InvalidInput(f"unknown currency {currency!r} (known: {known})") from None


@dataclass(frozen=True)
class Money:
    """An exact amount: ``amount`` minor units (cents) of ``currency``."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            kind = type(self.amount).__name__
            raise InvalidInput(f"money amounts are whole minor units, not {kind}")
        exponent(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, value: object, currency: str) -> Money:
        """Read a catalog amount: an ``int`` of minor units or an exact decimal string.

        >>> Money.parse("29.00", "CAD")
        Money(amount=2900, currency='CAD')
        >>> Money.parse(2900, "CAD").format()
        '29.00 CAD'

        ``29.999`` has more digits than the currency allows and a float is ambiguous: both are
        errors.
        """
        digits = exponent(currency)
        if isinstance(value, bool | float):
            raise InvalidInput(
                f"write amounts as integer minor units or a quoted decimal string like \"29.00\" "
                f"(got the number {value!r})"
            )
        if isinstance(value, int):
            return cls(value, currency)
        if not isinstance(value, str):
            raise InvalidInput(f"an amount must be an integer or a decimal string (got {value!r})")
        try:
            dec = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidInput(f"not a decimal amount: {value!r}") from None
        if not dec.is_finite():
            raise InvalidInput(f"not a decimal amount: {value!r}")
        exp = dec.as_tuple().exponent
        if isinstance(exp, int) and -exp > digits:
            raise InvalidInput(
                f"{value!r} has more than {digits} decimal places for {currency}"
            )
        try:
            units = dec.scaleb(digits, _SHIFT)
        except DecimalException:
            raise InvalidInput(f"{value!r} is too large an amount") from None
        return cls(int(units), currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise InvalidInput(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    # Ordering is only meaningful within one currency: comparing CAD with USD is a bug.
    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def times(self, quantity: int) -> Money:
        """Multiply by a whole quantity (seats, units)."""
        return Money(self.amount * quantity, self.currency)

    def prorate(self, ratio: Fraction) -> Money:
        """Scale by an exact ratio with the one rounding step the engine uses (``ROUNDING``)."""
        exact = Fraction(self.amount) * ratio
        return Money(round_half_up(exact), self.currency)

    @property
    def is_negative(self) -> bool:
        return self.amount < 0

    def decimal(self) -> Decimal:
        """The amount in major units, exact."""
        return Decimal(self.amount).scaleb(-exponent(self.currency), _SHIFT)

    def format(self) -> str:
        """``29.00 CAD``; for people, never parsed back."""
        digits = exponent(self.currency)
        return f"{self.decimal():.{digits}f} {self.currency}"

    def __str__(self) -> str:
        return self.format()


def max_charge(currency: str) -> Money:
    """``MAX_CHARGE`` in ``currency``, for messages and comparisons."""
    return Money(MAX_CHARGE, currency)


def check_chargeable(amount: Money, what: str = "the amount") -> Money:
    """Return ``amount`` if the gateway can charge it in one payment, else raise ``InvalidInput``.

    One cent up to ``MAX_CHARGE``. The message names the limit, so the user knows what fits:
    ``check_chargeable(Money(2**31, "CAD"), "the first invoice")`` says "the first invoice would
    be 21474836.48 CAD, more than the 21474836.47 CAD the gateway can charge in one payment".
    """
    if amount.amount < 1:
        raise InvalidInput(f"{what} must be at least {Money(1, amount.currency)} "
                           f"(got {amount})")
    if amount.amount > MAX_CHARGE:
        raise InvalidInput(f"{what} would be {amount}, more than the "
                           f"{max_charge(amount.currency)} the gateway can charge in one payment")
    return amount
