"""Plan terms as the engine bills them, and the rule that cuts a new plan version.

A plan's *terms* are what a customer agreed to pay and how often: price and interval. When they
change, the catalog stores a new version; a subscription keeps the version it was sold until its
plan's migration policy moves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from billing.domain.calendar import Interval
from billing.domain.money import Money


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
