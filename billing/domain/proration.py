"""Proration of a mid-period plan or quantity change, exact to the second, rounded once.

The customer is credited the unused part of what the old terms charge for the current period and
charged the same part under the new terms. Both are exact fractions of the period's seconds; the
*net* is rounded once with ``money.ROUNDING``, so a change and its reversal cost nothing but at
most one minor unit, and no amount is rounded twice.

A negative net is a credit, and a credit is only ever paid money given back: ``place_credit``
decides whether it reduces the period's open invoice, goes to the customer's balance, or (when
the period was never paid) nowhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from billing.domain.calendar import Period, seconds_between
from billing.domain.invoices import InvoiceStatus
from billing.domain.money import Money, round_half_up
from billing.domain.timeutil import to_utc
from billing.errors import Conflict, InvalidInput


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


@dataclass(frozen=True)
class PeriodInvoice:
    """What the credit rule needs to know of one invoice billed for the current period."""

    number: str
    status: InvoiceStatus
    total: int
    """What is still owed on it (after any credit applied) before tax, in minor units: a credit
    is a price, and taking it off an invoice takes its taxes off too."""
    kept: int = 0
    """Money received for it and not refunded, including credit balance applied to it."""
    charging: bool = False
    """A payment attempt for it is in flight (sending, pending or unknown)."""


@dataclass(frozen=True)
class CreditPlacement:
    """Where the credit of a change applied now goes; the three parts add up to the credit."""

    reductions: tuple[tuple[str, int], ...]
    """(invoice number, amount) taken off open invoices of the period, newest first."""
    to_balance: int
    """Added to the customer's credit balance: only money they paid for this period."""
    forfeited: int
    """Credited nowhere, and ``why``."""
    why: str | None = None

    @property
    def reduced(self) -> int:
        return sum(amount for _, amount in self.reductions)


def place_credit(credit: int, invoices: Sequence[PeriodInvoice]) -> CreditPlacement:
    """Place ``credit`` (minor units, positive) from a change applied mid-period.

    A credit gives back the unused part of what the period was billed, so it can only come from
    money the customer actually paid. In order:

    1. A charge in flight for an open invoice of the period: refuse (``Conflict``); its amount
       is on the wire and must not change under it.
    2. An invoice of the period uncollectible or void: no credit at all; nothing was paid.
    3. Open invoices are reduced first (newest first, never below zero): the customer simply
       owes less, and nothing is credited that might never be paid.
    4. The rest goes to the credit balance, up to the money kept for the period (paid, or
       credit balance applied to its invoices); anything beyond (say, after a refund) is
       forfeited.

    Worked example: 12.00 of credit with the period's invoice INV-1 open for 49.00 reduces
    INV-1 to 37.00 and credits nothing; with INV-1 paid, 12.00 goes to the balance.
    """
    if credit <= 0:
        raise InvalidInput(f"a credit must be positive (got {credit})")
    for invoice in invoices:
        if invoice.charging and invoice.status is InvoiceStatus.OPEN:
            raise Conflict(f"a charge for {invoice.number} is in progress; try again in a few "
                           "minutes")
    lost = [i for i in invoices if i.status in (InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.VOID)]
    if lost:
        return CreditPlacement((), 0, credit, f"{lost[0].number} is {lost[0].status.value}: "
                               "nothing was paid for this period")
    left, reductions = credit, []
    for invoice in reversed(invoices):
        if invoice.status is InvoiceStatus.OPEN and left and invoice.total:
            amount = min(left, invoice.total)
            reductions.append((invoice.number, amount))
            left -= amount
    kept = sum(i.kept for i in invoices)
    to_balance = min(left, kept)
    forfeited = left - to_balance
    why = None
    if forfeited:
        why = ("nothing was paid for this period yet" if not kept else
               "more than was paid for this period")
    return CreditPlacement(tuple(reductions), to_balance, forfeited, why)
