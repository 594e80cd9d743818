"""Plan terms as the engine bills them, and the rule that cuts a new plan version.

A plan's *terms* are what a customer agreed to pay and how often: price and interval. When they
change, the catalog stores a new version; a subscription keeps the version it was sold until its
plan's migration policy moves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from billing.domain.calendar import Interval
from billing.domain.money import Money, check_chargeable
from billing.domain.taxes import TaxRate, check_taxed_chargeable
from billing.errors import InvalidInput

MAX_QUANTITY = 1_000_000
"""Seats or units on one subscription: far above any real order, low enough that a slip such as
``--quantity 99999999999`` is refused as a mistake instead of priced."""


class MigrationPolicy(StrEnum):
    """What happens to existing subscriptions when a plan's terms change."""

    GRANDFATHER = "grandfather"
    """Keep the version they have until migrated explicitly."""
    AT_RENEWAL = "at_renewal"
    """Move to the newest version at their next renewal."""


@dataclass(frozen=True)
class PlanTerms:
    """Price per period and the period length; the content that plan versions are cut on."""

    price: Money
    interval: Interval

    def changes_from(self, older: PlanTerms) -> list[str]:
        """What differs from ``older``, for people; empty when nothing billable changed."""
        out: list[str] = []
        if self.price != older.price:
            out.append(f"price {older.price} -> {self.price}")
        if self.interval != older.interval:
            out.append(f"interval {older.interval} -> {self.interval}")
        return out


@dataclass(frozen=True)
class Plan:
    """A sellable plan from the catalog, with its current terms."""

    code: str
    name: str
    description: str
    terms: PlanTerms
    trial: timedelta
    setup_fee: Money | None
    retry_schedule: tuple[timedelta, ...]
    dunning_policy: str
    migration: MigrationPolicy


def check_quantity(quantity: int) -> int:
    """Return ``quantity`` if it is a whole number from 1 to ``MAX_QUANTITY``."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidInput(f"quantity must be a whole number (got {quantity!r})")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidInput(f"quantity must be between 1 and {MAX_QUANTITY} (got {quantity})")
    return quantity


def check_billable(price: Money, quantity: int, setup_fee: Money | None = None,
                   taxes: Sequence[TaxRate] = ()) -> Money:
    """The largest invoice these terms can issue, refused if the gateway could not charge it.

    A renewal invoice is ``price x quantity``, the first one adds the setup fee, and a proration
    invoice is a fraction of the new period's total, so no invoice of an accepted subscription
    exceeds this amount. A free plan (zero) issues invoices that are settled without a charge.
    ``taxes`` are the rates of the customer's province: the customer is charged the taxed
    total, so that is what must fit in one charge (taxes only grow with the taxable amount).

    >>> check_billable(Money(1900, "CAD"), 3, Money(2500, "CAD")).format()
    '82.00 CAD'
    """
    check_quantity(quantity)
    largest = price.times(quantity) + (setup_fee or Money.zero(price.currency))
    if largest.amount:
        fee = f" plus the {setup_fee} setup fee" if setup_fee and setup_fee.amount else ""
        check_chargeable(largest, f"one period of {quantity} x {price}{fee}")
        check_taxed_chargeable(largest, taxes, f"one period of {quantity} x {price}{fee}")
    return largest
