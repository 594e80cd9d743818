"""Proration of a mid-period plan or quantity change, exact to the second, rounded once.

The customer is credited the unused part of what the old terms charge for the current period and
charged the same part under the new terms. Both are exact fractions of the period's seconds; the
*net* is rounded once with ``money.ROUNDING``, so a change and its reversal cost nothing but at
most one minor unit, and no amount is rounded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from billing.domain.calendar import Period, seconds_between
from billing.domain.money import Money, round_half_up
from billing.domain.timeutil import to_utc
from billing.errors import InvalidInput


@dataclass(frozen=True)
class Proration:
    """What a change at ``at`` costs: positive means charge now, negative means credit."""

    at: datetime
    remaining_seconds: int
    period_seconds: int
    credit_old: Fraction
    charge_new: Fraction
    net: Money

    @property
    def ratio(self) -> Fraction:
        return Fraction(self.remaining_seconds, self.period_seconds)


def prorate_change(
    period: Period, at: datetime, old_total: Money, new_total: Money
) -> Proration:
    """Prorate replacing ``old_total`` per period by ``new_total`` per period at ``at``.

    Worked example: a 30-day period, switching from 10.00 to 40.00 with exactly 10 days left,
    charges (40.00 - 10.00) * 10/30 = 10.00.
    """
    at = to_utc(at)
    if old_total.currency != new_total.currency:
        raise InvalidInput("cannot prorate between currencies")
    if not period.contains(at):
        raise InvalidInput(f"{at.isoformat()} is outside the current period")
    remaining = seconds_between(at, period.end)
    ratio = Fraction(remaining, period.seconds)
    credit = Fraction(old_total.amount) * ratio
    charge = Fraction(new_total.amount) * ratio
    net = Money(round_half_up(charge - credit), new_total.currency)
    return Proration(at, remaining, period.seconds, credit, charge, net)
