"""Issuing invoices and settling them: the only code that changes what a customer owes.

An invoice is issued once per subscription, kind and period (the schema enforces it), numbered
from its id, reduced by the customer's credit balance, and is due at its period start. Settling
an invoice is idempotent: a paid invoice stays paid, and a second successful attempt on a paid
invoice raises an alert instead of being hidden.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.domain.invoices import DOCUMENT_VERSION, InvoiceKind, InvoiceStatus
from billing.domain.money import Money
from billing.domain.subscriptions import Event as SubEvent
from billing.domain.subscriptions import LifecyclePolicy, Status
from billing.domain.taxes import Taxed, apply_taxes, format_percent
from billing.errors import Conflict
from billing.services.events import record_event
from billing.services.lifecycle import apply_event
from billing.services.outbox import drop_unsent_dunning
from billing.services.taxes import rates_for, recorded_rates
from billing.store.models import (
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceTax,
    PaymentAttempt,
    Subscription,
)


@dataclass(frozen=True)
class LineDraft:
    kind: str
    description: str
    unit_amount: int
    quantity: int = 1
    period_start: datetime | None = None
    period_end: datetime | None = None

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


def draft_invoice(
    session: Session,
    *,
    at: datetime,
    customer: Customer,
    subscription: Subscription | None,
    kind: str,
    period_start: datetime,
    period_end: datetime,
    currency: str,
    lines: list[LineDraft],
    period_index: int | None = None,
) -> Invoice:
    """Add an invoice with its lines, not yet flushed, so a batch of renewals inserts its
    invoices in one round trip; the caller passes every draft to ``finish_invoices`` (numbers,
    events, zero totals paid on the spot) before committing.

    The customer's credit balance is applied first, then the taxes of their province
    (``billing.domain.taxes``) on what is left: the total charged is the taxed total.
    """
    subtotal = sum(line.amount for line in lines)
    credit = min(customer.credit_balance, max(subtotal, 0))
    customer.credit_balance -= credit
    rates = rates_for(session, customer.province)
    taxed = apply_taxes(subtotal, credit, rates) if rates else Taxed(subtotal, credit, ())
    invoice = Invoice(
        number=f"tmp-{uuid.uuid4().hex[:24]}", customer_id=customer.id,
        subscription_id=subscription.id if subscription else None, kind=kind,
        period_index=period_index, period_start=period_start, period_end=period_end,
        currency=currency, subtotal=subtotal, credit_applied=credit, tax=taxed.tax,
        total=taxed.total,
        amount_paid=0, amount_refunded=0, status=InvoiceStatus.OPEN, issued_at=at,
        due_at=max(period_start, at) if kind != InvoiceKind.RENEWAL else period_start,
        next_attempt_at=None, attempt_count=0, hard_declined=False, dunning_step=0,
        dunning_final_done=False,
    )
    invoice.lines = [
        InvoiceLine(kind=d.kind, description=d.description, quantity=d.quantity,
                    unit_amount=d.unit_amount, amount=d.amount, period_start=d.period_start,
                    period_end=d.period_end)
        for d in lines
    ]
    invoice.taxes = [
        InvoiceTax(position=i, name=t.name, province=customer.province, rate=format_percent(
            t.percent), taxable=t.taxable, amount=t.amount)
        for i, t in enumerate(taxed.lines)
    ]
    session.add(invoice)
    return invoice


def finish_invoices(session: Session, invoices: list[Invoice], at: datetime) -> None:
    """Number drafted invoices from their ids (one flush for all), settle zero totals and log
    ``invoice.issued`` for each. The temporary number is unique, so a crash between the flush
    and the commit leaves nothing: the transaction rolls back whole. Each invoice records the
    document templates it is issued with (``DOCUMENT_VERSION``), so it always renders as it
    was first shown, whatever templates are added later."""
    if not invoices:
        return
    session.flush()
    for invoice in invoices:
        invoice.number = f"INV-{invoice.id:07d}"
        invoice.template_version = DOCUMENT_VERSION
        if invoice.total == 0:
            invoice.status, invoice.paid_at = InvoiceStatus.PAID, at
        else:
            invoice.next_attempt_at = invoice.due_at
        record_event(session, at, "invoice.issued", customer_id=invoice.customer_id,
                     subscription_id=invoice.subscription_id, invoice_id=invoice.id,
                     number=invoice.number, kind=invoice.kind, total=invoice.total,
                     credit_applied=invoice.credit_applied or None, tax=invoice.tax or None,
                     period_start=invoice.period_start.isoformat())


def open_dunning_invoices(session: Session, subscription_id: int) -> int:
    query = select(func.count(Invoice.id)).where(
        Invoice.subscription_id == subscription_id, Invoice.status == InvoiceStatus.OPEN,
        Invoice.dunning_started_at.is_not(None),
    )
    return int(session.scalar(query) or 0)


def settle_paid(session: Session, invoice: Invoice, attempt: PaymentAttempt, at: datetime,
                policy: LifecyclePolicy | None = None) -> bool:
    """Mark ``invoice`` paid by ``attempt``; False if it already was. Money that arrives for an
    invoice written off (uncollectible) is still recorded as paid: it was taken."""
    if invoice.status == InvoiceStatus.PAID:
        return False
    invoice.status, invoice.paid_at = InvoiceStatus.PAID, at
    invoice.amount_paid = attempt.amount
    invoice.next_attempt_at = None
    if invoice.dunning_started_at is not None:
        drop_unsent_dunning(session, [invoice.id])
    record_event(session, at, "invoice.paid", customer_id=invoice.customer_id,
                 subscription_id=invoice.subscription_id, invoice_id=invoice.id,
                 number=invoice.number, amount=attempt.amount,
                 mch_order_no=attempt.mch_order_no)
    _after_payment(session, invoice, at, policy)
    return True


def _after_payment(session: Session, invoice: Invoice, at: datetime,
                   policy: LifecyclePolicy | None) -> None:
    if invoice.subscription_id is not None:
        sub = session.get(Subscription, invoice.subscription_id)
        if sub is not None:
            apply_event(session, sub, _payment_event(session, sub), at, policy,
                        invoice=invoice.number)


def reduce_open_invoice(session: Session, invoice: Invoice, amount: int, at: datetime, *,
                        description: str, period_end: datetime) -> None:
    """Take ``amount`` off an open invoice with a negative ``proration`` line.

    This is how a credit reaches an invoice that is not paid yet: the customer owes less, and no
    credit balance is created from money that may never come. ``subtotal`` stays the sum of the
    lines and ``total`` stays ``subtotal - credit_applied + tax``; ``amount`` comes off the
    taxable amount (it is a price), so each tax is computed again, once, at the rate the invoice
    was issued with. An invoice reduced to zero is paid on the spot, like one issued at zero,
    and may make its subscription paid up. The caller has locked the invoice and made sure no
    charge for it is in flight.
    """
    before_tax = invoice.total - invoice.tax
    if invoice.status != InvoiceStatus.OPEN or not 0 < amount <= before_tax:
        raise Conflict(f"cannot take {money(amount, invoice.currency)} off {invoice.number} "
                       f"({invoice.status}, {money(before_tax, invoice.currency)} owed "
                       "before tax)")
    invoice.lines.append(InvoiceLine(
        kind=InvoiceKind.PRORATION.value, description=description[:200], quantity=1,
        unit_amount=-amount, amount=-amount, period_start=at, period_end=period_end))
    _retax(invoice, invoice.subtotal - amount)
    record_event(session, at, "invoice.reduced", customer_id=invoice.customer_id,
                 subscription_id=invoice.subscription_id, invoice_id=invoice.id,
                 number=invoice.number, amount=amount, total=invoice.total,
                 tax=invoice.tax or None)
    if invoice.total == 0:
        invoice.status, invoice.paid_at, invoice.next_attempt_at = InvoiceStatus.PAID, at, None
        if invoice.dunning_started_at is not None:
            drop_unsent_dunning(session, [invoice.id])
        record_event(session, at, "invoice.paid", customer_id=invoice.customer_id,
                     subscription_id=invoice.subscription_id, invoice_id=invoice.id,
                     number=invoice.number, amount=0, reason="reduced to zero")
        _after_payment(session, invoice, at, None)


def _retax(invoice: Invoice, subtotal: int) -> None:
    """Give ``invoice`` a new subtotal, its taxes computed again at its recorded rates. The
    tax rows are loaded before anything changes: the schema checks that the total adds up, so
    no flush may see the subtotal changed without the total."""
    rows = list(invoice.taxes)
    taxed = apply_taxes(subtotal, invoice.credit_applied, recorded_rates(rows))
    for row, line in zip(rows, taxed.lines, strict=True):
        row.taxable, row.amount = line.taxable, line.amount
    invoice.subtotal, invoice.tax, invoice.total = subtotal, taxed.tax, taxed.total


def _payment_event(session: Session, sub: Subscription) -> SubEvent:
    """``paid_up`` once no invoice of a dunning status is left in dunning; the count is only
    made where the answer can change the status (most payments are of active subscriptions)."""
    if sub.status in (Status.PAST_DUE, Status.UNPAID) and (
            open_dunning_invoices(session, sub.id) == 0):
        return SubEvent.PAID_UP
    return SubEvent.PAYMENT_SUCCEEDED


def money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()
