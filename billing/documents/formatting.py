"""Amounts, dates and rates for people, by Babel, in the document's locale.

``en`` prints ``CA$29.00`` and ``March 1, 2026``; ``fr`` prints ``29,00 $CA`` and ``1 mars
2026`` (Babel's CLDR data: the currency is always named, so a reader abroad is never unsure
which dollar). Amounts arrive as integer minor units and are shifted exactly by ``Money``.
Dates are the customer's local dates: an invoice issued at 02:00 UTC on March 1 in Vancouver
is dated February 28.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency, format_percent

from billing.domain.calendar import local_date
from billing.domain.money import Money

LOCALES = ("en", "fr")


@dataclass(frozen=True)
class Formatter:
    locale: str
    currency: str
    timezone: str

    def money(self, amount: int) -> str:
        """``2900`` -> ``CA$29.00`` (en) or ``29,00 $CA`` (fr)."""
        return format_currency(Money(amount, self.currency).decimal(), self.currency,
                               locale=self.locale)

    def day(self, at: datetime | None) -> str:
        """The local date of ``at`` for the customer, written out; empty for none."""
        if at is None:
            return ""
        return format_date(local_date(at, self.timezone), format="long", locale=self.locale)

    def last_day(self, end: datetime | None) -> str:
        """The last day of a period that ends (exclusively) at ``end``: a month from March 1
        runs "to March 31" for people, though the engine says it ends at April 1, 00:00."""
        return self.day(end - timedelta(microseconds=1) if end is not None else None)

    def percent(self, rate: str) -> str:
        """``9.975`` -> ``9.975%`` (en) or ``9,975 %`` (fr): the rate exactly as charged."""
        return format_percent(Decimal(rate) / 100, locale=self.locale,
                              decimal_quantization=False)
