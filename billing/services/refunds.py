"""Refunds and voids of paid invoices, with the same intent-before-send discipline as charges.

A refund row (with its own ``mchRefundNo``) is committed in ``sending`` before ``cc_refund`` or
``cc_void`` is called, and it can never exceed what is still refundable: the invoice's paid amount
minus what is refunded or in flight (the schema also refuses ``amount_refunded > amount_paid``).
A refund moves money once, when it first becomes ``succeeded`` - from the response or from its
``payType=refund`` notify, whichever comes first - and is recorded as a credit note.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.domain.money import Money
from billing.domain.payments import FINAL, IN_FLIGHT, AttemptState
from billing.errors import Conflict, InvalidInput, NotFound
from billing.gateway import (
    GatewayError,
    GatewayNotSent,
    GatewayOutcomeUnknown,
    GatewayReply,
    Notify,
    OrderInfo,
)
from billing.services.events import record_event
from billing.services.installation import order_prefix
from billing.services.ports import Deps
from billing.store.models import Invoice, PaymentAttempt, Refund
from billing.store.uow import UnitOfWork


@dataclass(frozen=True)
class RefundView:
    id: int
    invoice: str
    kind: str
    amount: str
    state: str
    mch_refund_no: str
    credit_note: str | None
    reason: str | None


def _view(session: Session, refund: Refund) -> RefundView:
    invoice = session.get(Invoice, refund.invoice_id)
    assert invoice is not None
    return RefundView(refund.id, invoice.number, refund.kind,
                      Money(refund.amount, refund.currency).format(), refund.state,
                      refund.mch_refund_no, refund.credit_note_number, refund.reason)


def refundable(session: Session, invoice: Invoice) -> int:
    """What may still be refunded: paid, minus refunded, minus refunds still in flight."""
    in_flight = session.scalar(select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.invoice_id == invoice.id, Refund.state.in_([s.value for s in IN_FLIGHT])))
    return invoice.amount_paid - invoice.amount_refunded - int(in_flight or 0)


def _find_invoice(session: Session, number: str) -> Invoice:
    invoice = session.scalar(select(Invoice).where(Invoice.number == number))
    if invoice is None:
        raise NotFound(f"no invoice {number!r}")
    return invoice


def _start(deps: Deps, number: str, kind: str, amount: int | None,
           reason: str | None) -> tuple[int, str, str, int]:
    at = deps.clock.now()
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        invoice = _find_invoice(session, number)
        paid = session.scalar(select(PaymentAttempt).where(
            PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.state == "succeeded"))
        if invoice.status != "paid" or paid is None or paid.pay_order_id is None:
            raise Conflict(f"invoice {number} has no captured payment to {kind}")
        left = refundable(session, invoice)
        if kind == "void":
            if left != invoice.amount_paid:
                raise Conflict(f"invoice {number} is partly refunded; a void must be whole")
            amount = left
        amount = left if amount is None else amount
        if amount <= 0 or amount > left:
            shown = Money(left, invoice.currency).format()
            raise InvalidInput(f"refund amount must be between 0.01 and {shown} (refundable)")
        refund = Refund(invoice_id=invoice.id, payment_attempt_id=paid.id, kind=kind,
                        mch_refund_no=f"tmp-{uuid.uuid4().hex[:24]}", amount=amount,
                        currency=invoice.currency, state="sending", reason=reason,
                        created_at=at)
        session.add(refund)
        session.flush()
        refund.mch_refund_no = f"{order_prefix(session)}-R{refund.id:09d}"
        record_event(session, at, f"{kind}.started", invoice_id=invoice.id,
                     customer_id=invoice.customer_id, amount=amount,
                     mch_refund_no=refund.mch_refund_no)
        uow.commit()
        return refund.id, refund.mch_refund_no, paid.pay_order_id, amount


def _succeeded(session: Session, refund: Refund, at: datetime, pay_order_id: str | None) -> None:
    if refund.state == AttemptState.SUCCEEDED.value:
        return
    invoice = session.get(Invoice, refund.invoice_id, with_for_update=True)
    assert invoice is not None
    refund.state, refund.resolved_at = AttemptState.SUCCEEDED.value, at
    refund.pay_order_id = refund.pay_order_id or pay_order_id
    refund.credit_note_number = f"CN-{refund.id:07d}"
    invoice.amount_refunded += refund.amount
    record_event(session, at, f"{refund.kind}.succeeded", invoice_id=invoice.id,
                 customer_id=invoice.customer_id, amount=refund.amount,
                 credit_note=refund.credit_note_number)


def _record(deps: Deps, refund_id: int, reply: GatewayReply[OrderInfo] | None,
            error: GatewayError | None) -> RefundView:
    at = deps.clock.now()
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        refund = session.get(Refund, refund_id, with_for_update=True)
        assert refund is not None
        if refund.state not in [s.value for s in FINAL]:
            if isinstance(error, GatewayNotSent):
                refund.state, refund.reason = AttemptState.FAILED_NOT_SENT.value, str(error)
            elif error is not None or reply is None:
                refund.state = AttemptState.UNKNOWN.value
            elif not reply.ok:
                refund.state, refund.reason = AttemptState.FAILED.value, reply.ret_msg[:200]
            elif reply.data is not None and reply.data.paid:
                _succeeded(session, refund, at, reply.data.pay_order_id)
            else:
                refund.state = AttemptState.PENDING.value
        view = _view(session, refund)
        uow.commit()
    return view


def refund_invoice(deps: Deps, number: str, *, amount: int | None = None,
                   reason: str | None = None, void: bool = False) -> RefundView:
    """Refund (part of) or void a paid invoice; ``resolve_refund`` settles an unknown outcome."""
    kind = "void" if void else "refund"
    refund_id, refund_no, pay_order_id, value = _start(deps, number, kind, amount, reason)
    return _send(deps, refund_id, kind, refund_no, pay_order_id, value)


def _send(deps: Deps, refund_id: int, kind: str, refund_no: str, pay_order_id: str,
          value: int) -> RefundView:
    try:
        if kind == "void":
            reply = deps.gateway.cc_void(mch_refund_no=refund_no, pay_order_id=pay_order_id,
                                         notify_url=deps.config.notify_url)
        else:
            reply = deps.gateway.cc_refund(mch_refund_no=refund_no, pay_order_id=pay_order_id,
                                           refund_amount=value, notify_url=deps.config.notify_url)
    except (GatewayNotSent, GatewayOutcomeUnknown) as exc:
        return _record(deps, refund_id, None, exc)
    return _record(deps, refund_id, reply, None)


def resolve_refund(deps: Deps, refund_id: int) -> RefundView:
    """Re-send an unresolved refund under the same ``mchRefundNo``; the gateway treats it as the
    same refund, so this settles an unknown outcome without refunding twice."""
    with UnitOfWork(deps.store) as uow:
        refund = uow.session.get(Refund, refund_id)
        if refund is None:
            raise NotFound(f"no refund {refund_id}")
        attempt = uow.session.get(PaymentAttempt, refund.payment_attempt_id)
        assert attempt is not None and attempt.pay_order_id is not None
        args = (refund.kind, refund.mch_refund_no, attempt.pay_order_id, refund.amount)
        if refund.state in [s.value for s in FINAL]:
            return _view(uow.session, refund)
    return _send(deps, refund_id, *args)


def apply_refund_notify(session: Session, notify: Notify, at: datetime) -> str:
    """A ``payType=refund`` notify: settle the refund it names, once."""
    refund = session.scalar(select(Refund).where(Refund.mch_refund_no == notify.mch_order_no))
    if refund is None or notify.amount != refund.amount:
        record_event(session, at, "alert.notify_discrepancy", mch_order_no=notify.mch_order_no,
                     why="refund notify matches no refund of that amount")
        return "discrepancy"
    if notify.paid:
        _succeeded(session, refund, at, notify.pay_order_id)
    return "applied"


def list_refunds(deps: Deps, number: str) -> list[RefundView]:
    with UnitOfWork(deps.store) as uow:
        invoice = _find_invoice(uow.session, number)
        rows = uow.session.scalars(select(Refund).where(Refund.invoice_id == invoice.id)
                                   .order_by(Refund.id))
        return [_view(uow.session, r) for r in rows]
