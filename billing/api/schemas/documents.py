"""Bodies of invoices, credit notes, refunds, events and plans: amounts are integer minor
units beside the document's ``currency``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from billing.api.limits import MAX_AMOUNT
from billing.api.schemas.base import Amount, Request
from billing.services import documents
from billing.services.refunds import RefundView

# -- invoices, credit notes, refunds ------------------------------------------------------------

class InvoiceSummaryOut(BaseModel):
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

    @classmethod
    def of(cls, s: documents.InvoiceSummary) -> InvoiceSummaryOut:
        return cls(number=s.number, customer=s.customer, subscription=s.subscription,
                   kind=s.kind, status=s.status, currency=s.currency, issued_at=s.issued_at,
                   period_start=s.period_start, period_end=s.period_end, total=s.total,
                   amount_paid=s.amount_paid, amount_refunded=s.amount_refunded)


class LineOut(BaseModel):
    kind: str
    description: str
    quantity: int
    unit_amount: int
    amount: int
    period_start: datetime | None
    period_end: datetime | None


class TaxOut(BaseModel):
    name: str
    rate: str
    taxable: int
    amount: int


class PaymentOut(BaseModel):
    attempt: int
    mch_order_no: str
    pay_order_id: str | None
    amount: int
    paid_at: datetime | None
    card: str | None


class RefundRefOut(BaseModel):
    kind: str
    credit_note: str | None
    mch_refund_no: str
    pay_order_id: str | None
    amount: int
    state: str
    at: datetime | None
    reason: str | None


def _plain(value: Any) -> dict[str, Any]:
    return {k: getattr(value, k) for k in value.__dataclass_fields__}


class InvoiceOut(InvoiceSummaryOut):
    due_at: datetime
    paid_at: datetime | None
    subtotal: int
    credit_applied: int
    tax: int
    amount_due: int
    lines: list[LineOut]
    taxes: list[TaxOut]
    payments: list[PaymentOut]
    refunds: list[RefundRefOut]
    template_version: str

    @classmethod
    def of_document(cls, d: documents.InvoiceDocument) -> InvoiceOut:
        return cls(
            number=d.number, customer=d.customer.external_id, subscription=d.subscription,
            kind=d.kind, status=d.status, currency=d.currency, issued_at=d.issued_at,
            period_start=d.period_start, period_end=d.period_end, total=d.total,
            amount_paid=d.amount_paid, amount_refunded=d.amount_refunded, due_at=d.due_at,
            paid_at=d.paid_at, subtotal=d.subtotal, credit_applied=d.credit_applied, tax=d.tax,
            amount_due=d.amount_due, template_version=d.template_version,
            lines=[LineOut(**_plain(x)) for x in d.lines],
            taxes=[TaxOut(**_plain(x)) for x in d.taxes],
            payments=[PaymentOut(**_plain(x)) for x in d.payments],
            refunds=[RefundRefOut(**_plain(x)) for x in d.refunds])


class PayNowOut(BaseModel):
    url: str = Field(description="Signed link to the pay-now page; send it to the customer.")
    expires_at: datetime


class CreditNoteSummaryOut(BaseModel):
    number: str
    invoice: str
    customer: str
    kind: str
    currency: str
    amount: int
    issued_at: datetime | None

    @classmethod
    def of(cls, s: documents.CreditNoteSummary) -> CreditNoteSummaryOut:
        return cls(number=s.number, invoice=s.invoice, customer=s.customer, kind=s.kind,
                   currency=s.currency, amount=s.amount, issued_at=s.issued_at)


class CreditNoteOut(CreditNoteSummaryOut):
    reason: str | None
    mch_refund_no: str
    pay_order_id: str | None
    taxes: list[TaxOut]
    template_version: str
    duplicate: str | None = Field(
        None, description="The order number of a duplicate charge this credit note returns whole "
        "(refunded automatically; it was never the invoice's payment), or null.")

    @classmethod
    def of_document(cls, d: documents.CreditNoteDocument) -> CreditNoteOut:
        return cls(number=d.number, invoice=d.invoice.number, customer=d.customer.external_id,
                   kind=d.kind, currency=d.currency, amount=d.amount, issued_at=d.issued_at,
                   reason=d.reason, mch_refund_no=d.mch_refund_no, pay_order_id=d.pay_order_id,
                   taxes=[TaxOut(**_plain(x)) for x in d.taxes],
                   template_version=d.template_version, duplicate=d.duplicate)


class RefundCreate(Request):
    amount: int | None = Field(None, ge=1, le=MAX_AMOUNT,
                               description="Minor units; default: all that is refundable.")
    reason: str | None = Field(None, min_length=1, max_length=200)


class RefundOut(BaseModel):
    id: int
    invoice: str
    kind: Literal["refund", "void"]
    amount: Amount
    state: str = Field(description="succeeded, failed... or in flight: reconciliation "
                       "settles it; never send it again.")
    mch_refund_no: str
    credit_note: str | None
    reason: str | None

    @classmethod
    def of(cls, v: RefundView) -> RefundOut:
        amount = Amount.of_text(v.amount)
        assert amount is not None
        return cls(id=v.id, invoice=v.invoice, kind="void" if v.kind == "void" else "refund",
                   amount=amount, state=v.state, mch_refund_no=v.mch_refund_no,
                   credit_note=v.credit_note, reason=v.reason)


# -- events and plans ---------------------------------------------------------------------------

class EventOut(BaseModel):
    id: int
    at: datetime
    type: str
    customer_id: int | None
    subscription_id: int | None
    invoice_id: int | None
    data: dict[str, Any]


class PlanOut(BaseModel):
    code: str
    name: str
    description: str
    version: int
    amount: int
    currency: str
    interval_unit: str
    interval_count: int
    trial_days: int
    setup_fee: int | None
    archived: bool
