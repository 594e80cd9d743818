"""Invoices and credit notes as documents: what a customer is shown, read in one transaction.

The use cases here (``list_invoices``, ``invoice_document``, ``list_credit_notes``,
``credit_note_document``) return frozen read models and never ORM rows, so the CLI and a
future HTTP API share them and neither can change a row by accident. Amounts stay integer minor
units with their currency; formatting for people belongs to the renderer (``billing.documents``).

A credit note is a succeeded refund or void (``Refund.credit_note_number``). It renders with the
template version of the invoice it corrects, and shows the share of each of that invoice's taxes
it gives back (``billing.domain.taxes.refunded_taxes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.domain.calendar import start_of_local_day
from billing.domain.invoices import InvoiceStatus
from billing.domain.payments import AttemptState
from billing.domain.taxes import TaxLine, format_percent, refunded_taxes
from billing.errors import InvalidInput, NotFound
from billing.services.customers import find_customer
from billing.store.models import (
    Card,
    Customer,
    Invoice,
    InvoiceTax,
    PaymentAttempt,
    Refund,
)
from billing.store.uow import UnitOfWork

FIRST_VERSION = "v1"
"""What an invoice issued before versions were recorded (``template_version`` NULL) renders
with: v1 is the layout those invoices were first shown in."""


@dataclass(frozen=True)
class CustomerParty:
    external_id: str
    name: str
    email: str
    locale: str
    timezone: str
    province: str | None


@dataclass(frozen=True)
class Line:
    kind: str
    """``subscription``, ``proration``, ``setup_fee``..."""
    description: str
    quantity: int
    unit_amount: int
    amount: int
    period_start: datetime | None
    period_end: datetime | None


@dataclass(frozen=True)
class Tax:
    name: str
    rate: str
    """The percent, exact, as it was charged (``9.975``)."""
    taxable: int
    amount: int


@dataclass(frozen=True)
class Payment:
    """A succeeded charge, with the references the gateway and the cardholder's bank know."""

    attempt: int
    mch_order_no: str
    pay_order_id: str | None
    amount: int
    paid_at: datetime | None
    card: str | None
    """The masked card number (``6250 94** **** 0003``), or the gateway's card id."""


@dataclass(frozen=True)
class RefundRef:
    kind: str
    credit_note: str | None
    mch_refund_no: str
    pay_order_id: str | None
    amount: int
    state: str
    at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class InvoiceSummary:
    number: str
    customer: str
    subscription: int | None
    kind: str
    status: str
    currency: str
    issued_at: datetime
    period_start: datetime
    period_end: datetime
    total: int
    amount_paid: int
    amount_refunded: int
    id: int = 0
    """The row id: the cursor of a page of invoices (``before_id``)."""


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    kind: str
    status: str
    currency: str
    issued_at: datetime
    due_at: datetime
    paid_at: datetime | None
    period_start: datetime
    period_end: datetime
    customer: CustomerParty
    subscription: int | None
    lines: tuple[Line, ...]
    subtotal: int
    credit_applied: int
    taxes: tuple[Tax, ...]
    tax: int
    total: int
    amount_paid: int
    amount_refunded: int
    payments: tuple[Payment, ...]
    refunds: tuple[RefundRef, ...]
    template_version: str

    @property
    def amount_due(self) -> int:
        """What the customer still owes: nothing once paid, voided or written off."""
        return self.total - self.amount_paid if self.status == InvoiceStatus.OPEN else 0


@dataclass(frozen=True)
class CreditNoteSummary:
    number: str
    invoice: str
    customer: str
    kind: str
    currency: str
    amount: int
    issued_at: datetime | None
    id: int = 0
    """The refund's row id: the cursor of a page of credit notes (``before_id``)."""


@dataclass(frozen=True)
class CreditNoteDocument:
    number: str
    kind: str
    """``refund`` (part or all of the money back) or ``void`` (the payment canceled)."""
    currency: str
    amount: int
    issued_at: datetime | None
    reason: str | None
    mch_refund_no: str
    pay_order_id: str | None
    """The gateway's id for the refund itself."""
    taxes: tuple[Tax, ...]
    """The share of each of the invoice's taxes this credit note gives back."""
    customer: CustomerParty
    invoice: InvoiceDocument
    payment: Payment | None
    """The charge the money went back to."""
    template_version: str
    duplicate: str | None = None
    """The order number of the duplicate charge this returns whole, or None for a refund of the
    invoice's own payment. A duplicate was never the invoice's money: it carries no tax share."""


def _party(row: Customer) -> CustomerParty:
    return CustomerParty(row.external_id, row.name, row.email, row.locale, row.timezone,
                         row.province)


def _day_bounds(start: date | None, end: date | None, tz: str) -> tuple[datetime | None,
                                                                        datetime | None]:
    """``--from``/``--to`` as instants: whole local days of the merchant, ``end`` included."""
    if start is not None and end is not None and end < start:
        raise InvalidInput(f"--to {end} is before --from {start}")
    return (start_of_local_day(start, tz) if start else None,
            start_of_local_day(end + timedelta(days=1), tz) if end else None)


def list_invoices(uow: UnitOfWork, *, customer: str | None = None,
                  subscription: int | None = None, status: str | None = None,
                  issued_from: date | None = None, issued_to: date | None = None,
                  timezone: str = "UTC", limit: int = 100,
                  before_id: int | None = None) -> list[InvoiceSummary]:
    """Invoices, newest first, filtered by customer, subscription, status and issue date;
    ``before_id``: only those older than that invoice (the API's next page)."""
    if status is not None and status not in {s.value for s in InvoiceStatus}:
        known = ", ".join(s.value for s in InvoiceStatus)
        raise InvalidInput(f"--status must be one of {known} (got {status!r})")
    query = select(Invoice, Customer).join(
        Customer, Customer.id == Invoice.customer_id)
    if customer is not None:
        query = query.where(Invoice.customer_id == find_customer(uow, customer).id)
    if subscription is not None:
        query = query.where(Invoice.subscription_id == subscription)
    if status is not None:
        query = query.where(Invoice.status == status)
    low, high = _day_bounds(issued_from, issued_to, timezone)
    if low is not None:
        query = query.where(Invoice.issued_at >= low)
    if high is not None:
        query = query.where(Invoice.issued_at < high)
    if before_id is not None:
        query = query.where(Invoice.id < before_id)
    rows = uow.session.execute(query.order_by(Invoice.id.desc()).limit(limit))
    return [InvoiceSummary(i.number, c.external_id, i.subscription_id, i.kind, i.status,
                           i.currency, i.issued_at, i.period_start, i.period_end, i.total,
                           i.amount_paid, i.amount_refunded, i.id) for i, c in rows]


def find_invoice(session: Session, number: str) -> Invoice:
    invoice = session.scalar(select(Invoice).where(Invoice.number == number.strip().upper()))
    if invoice is None:
        raise NotFound(f"no invoice {number!r} (numbers look like INV-0000042; "
                       "`billing invoices list` shows them)")
    return invoice


def _payments(session: Session, invoice: Invoice) -> tuple[Payment, ...]:
    rows = session.execute(
        select(PaymentAttempt, Card.masked_number)
        .outerjoin(Card, Card.gateway_card_id == PaymentAttempt.gateway_card_id)
        .where(PaymentAttempt.invoice_id == invoice.id,
               PaymentAttempt.state == AttemptState.SUCCEEDED)
        .order_by(PaymentAttempt.attempt_no))
    return tuple(Payment(a.attempt_no, a.mch_order_no, a.pay_order_id, a.amount, a.resolved_at,
                         masked or a.gateway_card_id) for a, masked in rows)


def _refunds(session: Session, invoice: Invoice) -> tuple[RefundRef, ...]:
    rows = session.scalars(select(Refund).where(Refund.invoice_id == invoice.id)
                           .order_by(Refund.id))
    return tuple(RefundRef(r.kind, r.credit_note_number, r.mch_refund_no, r.pay_order_id,
                           r.amount, AttemptState(r.state).value, r.resolved_at, r.reason)
                 for r in rows)


def _taxes(rows: Sequence[InvoiceTax]) -> tuple[Tax, ...]:
    return tuple(Tax(t.name, t.rate, t.taxable, t.amount) for t in rows)


def _document(session: Session, invoice: Invoice) -> InvoiceDocument:
    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None
    lines = tuple(Line(x.kind, x.description, x.quantity, x.unit_amount, x.amount,
                       x.period_start, x.period_end) for x in invoice.lines)
    return InvoiceDocument(
        invoice.number, invoice.kind, InvoiceStatus(invoice.status).value, invoice.currency,
        invoice.issued_at, invoice.due_at, invoice.paid_at, invoice.period_start,
        invoice.period_end, _party(customer), invoice.subscription_id, lines, invoice.subtotal,
        invoice.credit_applied,
        _taxes(invoice.taxes), invoice.tax, invoice.total, invoice.amount_paid,
        invoice.amount_refunded, _payments(session, invoice), _refunds(session, invoice),
        invoice.template_version or FIRST_VERSION)


def invoice_document(uow: UnitOfWork, number: str) -> InvoiceDocument:
    """Everything an invoice shows: lines, taxes, totals, payments and refunds."""
    return _document(uow.session, find_invoice(uow.session, number))


def list_credit_notes(uow: UnitOfWork, *, customer: str | None = None,
                      subscription: int | None = None, invoice: str | None = None,
                      issued_from: date | None = None, issued_to: date | None = None,
                      timezone: str = "UTC", limit: int = 100,
                      before_id: int | None = None) -> list[CreditNoteSummary]:
    """Credit notes (succeeded refunds and voids), newest first; ``before_id``: only those
    older than that one (the API's next page)."""
    query = (select(Refund, Invoice.number, Customer.external_id)
             .join(Invoice, Invoice.id == Refund.invoice_id)
             .join(Customer, Customer.id == Invoice.customer_id)
             .where(Refund.credit_note_number.is_not(None)))
    if customer is not None:
        query = query.where(Invoice.customer_id == find_customer(uow, customer).id)
    if subscription is not None:
        query = query.where(Invoice.subscription_id == subscription)
    if invoice is not None:
        query = query.where(Invoice.id == find_invoice(uow.session, invoice).id)
    low, high = _day_bounds(issued_from, issued_to, timezone)
    if low is not None:
        query = query.where(Refund.resolved_at >= low)
    if high is not None:
        query = query.where(Refund.resolved_at < high)
    if before_id is not None:
        query = query.where(Refund.id < before_id)
    rows = uow.session.execute(query.order_by(Refund.id.desc()).limit(limit))
    return [CreditNoteSummary(r.credit_note_number or "", number, ext, r.kind, r.currency,
                              r.amount, r.resolved_at, r.id) for r, number, ext in rows]


def credit_note_document(uow: UnitOfWork, number: str) -> CreditNoteDocument:
    """A credit note with the invoice it corrects and the share of its taxes given back; the
    refund of a duplicate charge gives back that charge whole, names it, and no tax (the
    invoice's taxes were paid, if at all, by its own payment, which this does not touch)."""
    session = uow.session
    refund = session.scalar(select(Refund).where(
        Refund.credit_note_number == number.strip().upper()))
    if refund is None:
        raise NotFound(f"no credit note {number!r} (numbers look like CN-0000042; "
                       "`billing credit-notes list` shows them)")
    invoice = session.get(Invoice, refund.invoice_id)
    assert invoice is not None
    document = _document(session, invoice)
    duplicate = _duplicate_charge(session, refund)
    paid = duplicate or next((p for p in document.payments), None)
    back = refunded_taxes(refund.amount, invoice.amount_paid, [
        TaxLine(t.name, Decimal(t.rate), t.taxable, t.amount) for t in invoice.taxes
    ]) if invoice.taxes and invoice.amount_paid and duplicate is None else ()
    return CreditNoteDocument(
        refund.credit_note_number or number, refund.kind, refund.currency, refund.amount,
        refund.resolved_at, refund.reason, refund.mch_refund_no, refund.pay_order_id,
        tuple(Tax(t.name, format_percent(t.percent), t.taxable, t.amount) for t in back),
        document.customer, document, paid, document.template_version,
        duplicate.mch_order_no if duplicate else None)


def _duplicate_charge(session: Session, refund: Refund) -> Payment | None:
    """The charge a refund returns, when it was a duplicate the invoice did not need."""
    row = session.execute(
        select(PaymentAttempt, Card.masked_number)
        .outerjoin(Card, Card.gateway_card_id == PaymentAttempt.gateway_card_id)
        .where(PaymentAttempt.id == refund.payment_attempt_id,
               PaymentAttempt.state == AttemptState.DUPLICATE)).first()
    if row is None:
        return None
    attempt, masked = row
    return Payment(attempt.attempt_no, attempt.mch_order_no, attempt.pay_order_id,
                   attempt.amount, attempt.resolved_at, masked or attempt.gateway_card_id or None)
