"""Pay now: the customer pays an open invoice on the gateway's hosted ``cc_purchase`` page.

The money path is the collection's, with the customer as the sender:

1. **Intent** (``start_pay_now``, one transaction): lock the invoice, check it is open with an
   amount due, and commit a ``sending`` attempt with a fresh ``mchOrderNo``, ``source=pay_now``
   and an ``expires_at`` (``EngineConfig.pay_now_lifetime``). The partial unique index allows
   one in-flight attempt per invoice, so a pay-now and a scheduled retry exclude each other:
   whichever commits second gets ``PaymentInProgress`` (the retry tick simply skips the invoice).
2. **Send** (no transaction): ``cc_purchase``, which only opens the hosted page; nothing is
   charged until the customer submits it. Its answer, a transit failure included, goes through
   ``apply_outcome`` like any purchase's: an accepted call leaves the attempt ``pending``, an
   unknown outcome ``unknown`` (resolved by ``cc_query``, never re-sent).
3. **Settle** from the signed notify, or from ``cc_query`` when the browser comes back
   (``confirm_pay_now``): the return URL's own parameters are unsigned and never read.

A page that is never paid is **watched** by the reconcile tick after its lifetime, without any
effect on the invoice's dunning, and looked up for a late payment for ``PAY_NOW_WATCH``
(``decide`` owns these rules, ``billing.domain.payments``); a new click or a scheduled retry
queries the invoice's watched orders first (``billing.services.watched``). A payment the invoice
did not need (a second tab, a page paid after a credit) ends ``duplicate`` and is refunded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from billing.domain.invoices import InvoiceStatus
from billing.domain.payments import (
    IN_FLIGHT,
    PAID_STATES,
    AttemptSource,
    AttemptState,
    Outcome,
    OutcomeKind,
    Source,
    order_number,
)
from billing.errors import Conflict, GatewayError, NotFound
from billing.gateway import outcome_of_error, outcome_of_query
from billing.services.collection import record, user_ref
from billing.services.documents import find_invoice
from billing.services.events import record_event
from billing.services.installation import new_nonce, order_prefix
from billing.services.links import pay_now_url, pay_return_url
from billing.services.ports import Deps, EngineConfig
from billing.services.watched import check_invoice
from billing.store.models import Customer, Invoice, PaymentAttempt
from billing.store.uow import UnitOfWork

__all__ = ["InvoiceNotPayable", "PayNowResult", "PayNowUnavailable", "PayNowView",
           "PaymentInProgress", "confirm_pay_now", "pay_link", "show_pay_now", "start_pay_now"]

log = logging.getLogger(__name__)


class PaymentInProgress(Conflict):
    """Another attempt on this invoice (a scheduled retry or an earlier pay-now) is in flight."""


class InvoiceNotPayable(Conflict):
    """The invoice is paid, void or has nothing left to pay."""


class PayNowUnavailable(Conflict):
    """The gateway did not open a hosted page; nothing was charged, the customer may retry."""


@dataclass(frozen=True)
class PayNowView:
    """What the pay-now page shows before anything happens."""

    invoice_id: int
    number: str
    amount_due: int
    currency: str
    status: str
    locale: str
    timezone: str
    merchant: str

    @property
    def payable(self) -> bool:
        return self.status == InvoiceStatus.OPEN and self.amount_due > 0


class PayNowResult(StrEnum):
    PAID = "paid"
    NOT_PAID = "not_paid"
    PROCESSING = "processing"
    REFUNDING = "refunding"
    """This payment was taken but the invoice did not need it: it is being refunded."""


def _view(invoice: Invoice, customer: Customer, merchant: str) -> PayNowView:
    return PayNowView(invoice.id, invoice.number, invoice.total - invoice.amount_paid,
                      invoice.currency, InvoiceStatus(invoice.status).value, customer.locale,
                      customer.timezone, merchant)


def show_pay_now(deps: Deps, invoice_id: int) -> PayNowView:
    """The invoice as the link's page shows it; reads only (a mail scanner's GET is harmless)."""
    with UnitOfWork(deps.store) as uow:
        invoice = uow.session.get(Invoice, invoice_id)
        if invoice is None:
            raise NotFound(f"no invoice #{invoice_id}")
        customer = uow.session.get(Customer, invoice.customer_id)
        assert customer is not None
        return _view(invoice, customer, deps.config.merchant_name)


def pay_link(uow: UnitOfWork, config: EngineConfig, number: str, at: datetime) -> str:
    """The signed pay-now link for the open invoice ``number`` (an operator sends it by hand);
    a paid or void invoice has none, so no customer is sent a link that can only say so."""
    invoice = find_invoice(uow.session, number)
    if invoice.status != InvoiceStatus.OPEN or invoice.total - invoice.amount_paid <= 0:
        raise InvoiceNotPayable(f"invoice {invoice.number} is {invoice.status}: nothing to pay")
    return pay_now_url(config, invoice.id, at)


@dataclass(frozen=True)
class _Intent:
    attempt_id: int
    mch_order_no: str
    amount: int
    currency: str
    user_ref: str
    subject: str


def _create_intent(deps: Deps, invoice_id: int, at: datetime) -> _Intent:
    """Phase 1: commit the pay-now attempt, or refuse (not payable, or one already in flight)."""
    try:
        with UnitOfWork(deps.store) as uow:
            session = uow.session
            invoice = session.get(Invoice, invoice_id, with_for_update=True)
            if invoice is None:
                raise NotFound(f"no invoice #{invoice_id}")
            due = invoice.total - invoice.amount_paid
            if invoice.status != InvoiceStatus.OPEN or due <= 0:
                raise InvoiceNotPayable(f"invoice {invoice.number} is {invoice.status}")
            if session.scalar(select(PaymentAttempt.id).where(
                    PaymentAttempt.invoice_id == invoice.id,
                    PaymentAttempt.state.in_(IN_FLIGHT)).limit(1)) is not None:
                raise PaymentInProgress(f"a payment for invoice {invoice.number} is in progress")
            customer = session.get(Customer, invoice.customer_id)
            assert customer is not None
            number = invoice.attempt_count + 1
            attempt = PaymentAttempt(
                invoice_id=invoice.id, attempt_no=number,
                mch_order_no=order_number(order_prefix(session), invoice.id, number, new_nonce()),
                amount=due, currency=invoice.currency, gateway_card_id="",
                state=AttemptState.SENDING, created_at=at, sent_at=at, check_count=0,
                lease_owner=deps.config.worker, lease_until=at + deps.config.send_lease,
                source=AttemptSource.PAY_NOW, expires_at=at + deps.config.pay_now_lifetime)
            # The schedule (next_attempt_at, last_attempt_at) is the retry tick's: left as it is.
            invoice.attempt_count = number
            session.add(attempt)
            session.flush()
            record_event(session, at, "payment.pay_now_started", customer_id=customer.id,
                         subscription_id=invoice.subscription_id, invoice_id=invoice.id,
                         mch_order_no=attempt.mch_order_no, attempt=number, amount=due)
            intent = _Intent(attempt.id, attempt.mch_order_no, due, invoice.currency,
                             user_ref(customer), f"Invoice {invoice.number}"[:64])
            uow.commit()
    except IntegrityError as exc:  # a retry committed its attempt first (the unique index)
        raise PaymentInProgress(f"a payment for invoice #{invoice_id} is in progress") from exc
    return intent


def start_pay_now(deps: Deps, invoice_id: int) -> str:
    """The customer clicked "Pay now": commit the attempt, open the hosted page, return its URL.

    The invoice's watched pages (abandoned earlier, still payable) are queried first: one
    paid late settles the invoice and this click then finds it paid (``InvoiceNotPayable``).
    Raises ``InvoiceNotPayable``, ``PaymentInProgress`` (nothing sent) or ``PayNowUnavailable``
    (the gateway refused or could not be reached; the attempt is closed or left to
    reconciliation, never re-sent blindly).
    """
    if not check_invoice(deps, invoice_id):  # an earlier page may have been paid: ask first
        raise PayNowUnavailable("an earlier payment page could not be checked")
    intent = _create_intent(deps, invoice_id, deps.clock.now())
    try:
        reply = deps.gateway.cc_purchase(
            mch_order_no=intent.mch_order_no, mch_user_id=intent.user_ref,
            amount=intent.amount, currency=intent.currency, subject=intent.subject,
            notify_url=deps.config.notify_url,
            return_url=pay_return_url(deps.config, intent.mch_order_no))
    except Exception as exc:  # classified: not sent only when provably so, else unknown
        if not isinstance(exc, GatewayError):
            log.exception("unexpected error opening a pay-now page for %s", intent.mch_order_no)
        record(deps, intent.attempt_id, outcome_of_error(exc))
        raise PayNowUnavailable("the payment page could not be opened") from exc
    url = reply.data.redirect_url if reply.ok and reply.data is not None else None
    if not url:
        record(deps, intent.attempt_id,
               Outcome(OutcomeKind.REJECTED, Source.PURCHASE, reason=reply.ret_msg or "refused"))
        raise PayNowUnavailable(f"the gateway did not open a payment page: {reply.ret_msg}")
    # The page is open, nothing is charged yet: pending, looked up until it expires.
    record(deps, intent.attempt_id, Outcome(OutcomeKind.UNSETTLED, Source.PURCHASE))
    return url


def confirm_pay_now(deps: Deps, mch_order_no: str) -> PayNowResult:
    """The browser is back from the hosted page: ask the gateway (``cc_query``) and apply its
    answer through the state machine, then say what the invoice is now. Safe to repeat."""
    with UnitOfWork(deps.store) as uow:
        attempt = uow.session.scalar(select(PaymentAttempt).where(
            PaymentAttempt.mch_order_no == mch_order_no,
            PaymentAttempt.source == AttemptSource.PAY_NOW))
        if attempt is None:
            raise NotFound(f"no pay-now payment {mch_order_no}")
        attempt_id, state = attempt.id, AttemptState(attempt.state)
    answered = state in PAID_STATES
    if not answered:
        try:
            outcome = outcome_of_query(deps.gateway.cc_query(mch_order_no=mch_order_no))
        except GatewayError as exc:
            log.warning("pay-now return: cc_query for %s failed: %s", mch_order_no,
                        type(exc).__name__)
        else:
            answered = outcome.kind is not OutcomeKind.NO_ANSWER
            if answered:
                record(deps, attempt_id, outcome)
    return _result(deps, attempt_id, answered)


def _result(deps: Deps, attempt_id: int, answered: bool) -> PayNowResult:
    """What the return page says; a watched page the gateway could not be asked about may have
    been paid just now, so it is "processing", never "nothing was charged"."""
    with UnitOfWork(deps.store) as uow:
        attempt = uow.session.get(PaymentAttempt, attempt_id)
        assert attempt is not None
        invoice = uow.session.get(Invoice, attempt.invoice_id)
        assert invoice is not None
        if attempt.state == AttemptState.DUPLICATE:
            return PayNowResult.REFUNDING
        if attempt.state == AttemptState.SUCCEEDED or invoice.status == InvoiceStatus.PAID:
            return PayNowResult.PAID
        if attempt.state in IN_FLIGHT or (
                attempt.state == AttemptState.WATCHED and not answered):
            return PayNowResult.PROCESSING
        return PayNowResult.NOT_PAID
