"""Giving back money for a change applied mid-period, only from what was paid for the period.

A downgrade applied now once credited the unpaid rest of a period whose invoice later became
uncollectible, and that credit paid the customer's next subscription. The rule now lives in
``billing.domain.proration.place_credit``; this module reads the period's invoices and payment
attempts under lock and writes its decision: reduced invoices, the credit balance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from billing.domain.calendar import Period
from billing.domain.invoices import InvoiceKind, InvoiceStatus
from billing.domain.money import Money
from billing.domain.proration import CreditPlacement, PeriodInvoice, place_credit
from billing.errors import Conflict
from billing.services.invoicing import reduce_open_invoice
from billing.store.models import IN_FLIGHT, Customer, Invoice, PaymentAttempt, Subscription

LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's SQLSTATE for a ``NOWAIT`` lock that another transaction holds."""


def give_credit(session: Session, sub: Subscription, customer: Customer, period: Period,
                credit: int, now: datetime, what: str) -> CreditPlacement:
    """Give back ``credit`` only from money paid for ``period`` (``place_credit``): reduce the
    period's open invoice, or add to the balance if it was paid, or nothing if it never will be.

    The period's invoices are locked first, so a collection tick either has committed its
    attempt (and we see it in flight and refuse) or cannot claim the invoice until we commit.
    A ``watched`` pay-now page (abandoned, still looked up) does not refuse the credit: its
    late payment is decided under the invoice's lock (``payments.apply_outcome``), after this
    commits, so it sees the reduced total and is recorded as a duplicate and refunded, never
    as an overpayment; refusing would block every change for as long as a page is watched.
    """
    invoices = _lock_period_invoices(session, sub, period)
    charging = set(session.scalars(select(PaymentAttempt.invoice_id).where(
        PaymentAttempt.invoice_id.in_([i.id for i in invoices]),
        PaymentAttempt.state.in_(IN_FLIGHT))))
    placed = place_credit(credit, [
        PeriodInvoice(i.number, InvoiceStatus(i.status), i.total - i.tax,
                      i.amount_paid - i.amount_refunded + i.credit_applied, i.id in charging)
        for i in invoices])
    by_number = {i.number: i for i in invoices}
    for number, amount in placed.reductions:
        reduce_open_invoice(session, by_number[number], amount, now, description=what,
                            period_end=period.end)
    customer.credit_balance += placed.to_balance
    return placed


def _lock_period_invoices(session: Session, sub: Subscription, period: Period) -> list[Invoice]:
    """The invoices billed for ``period`` (renewal and prorations), locked, oldest first.

    ``NOWAIT``: a collection tick holding one of them is preparing a charge, and it may be
    waiting for the subscription row this change holds; waiting for it in turn would deadlock.
    """
    query = select(Invoice).where(
        Invoice.subscription_id == sub.id,
        Invoice.kind.in_((InvoiceKind.RENEWAL, InvoiceKind.PRORATION)),
        Invoice.period_end == period.end, Invoice.period_start >= period.start,
    ).order_by(Invoice.id)
    numbers = list(session.scalars(query.with_only_columns(Invoice.number)))
    try:
        return list(session.scalars(query.with_for_update(nowait=True)))
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        raise Conflict(f"a charge for {', '.join(numbers)} is in progress; try again in a few "
                       "minutes") from None


def placement_data(placed: CreditPlacement) -> dict[str, Any]:
    """The placement as event data: minor units, invoice numbers."""
    return {"reduced": dict(placed.reductions) or None,
            "credit_to_balance": placed.to_balance or None,
            "credit_forfeited": placed.forfeited or None, "forfeited_because": placed.why}


def placement_view(placed: CreditPlacement, currency: str) -> dict[str, str | None]:
    """The placement for people: ``reduced``, ``credit_to_balance``, ``credit_forfeited``."""
    reduced = ", ".join(f"{number} by {Money(amount, currency)}"
                        for number, amount in placed.reductions)
    return {"reduced": reduced or None,
            "credit_to_balance": str(Money(placed.to_balance, currency))
            if placed.to_balance else None,
            "credit_forfeited": f"{Money(placed.forfeited, currency)}: {placed.why}"
            if placed.forfeited else None}
