"""Applying what is known about a payment attempt, whichever way it became known.

The purchase response, a ``cc_query`` answer and a signed notify all end here, as a
``SendOutcome``. The rules are monotonic, so any order of arrival gives the same result: a
succeeded attempt never changes; a success proven by the gateway wins over anything we recorded
before; a failure never overrides a final state; pending and unknown only ever wait for a query.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.domain.dunning import DunningPlan, next_retry
from billing.domain.payments import (
    FINAL,
    AttemptState,
    DeclineKind,
    SendOutcome,
    classify_decline,
    next_check,
    state_for_status,
)
from billing.domain.subscriptions import Event as SubEvent
from billing.gateway import GatewayReply, OrderInfo
from billing.services.dunning import advance_dunning, dunning_snapshot
from billing.services.events import record_event
from billing.services.invoicing import settle_paid
from billing.services.lifecycle import apply_transition
from billing.services.ports import EngineConfig
from billing.store.models import Invoice, PaymentAttempt, Subscription

NOT_SENT_BACKOFF = timedelta(minutes=1)
MERCHANT_ERROR_BACKOFF = timedelta(hours=1)
_MERCHANT_ERRORS = ("sign", "mchid", "merchant", "loginname", "login name", "parameter",
                    "channel", "currency", "too long", "missing")


def is_merchant_error(message: str) -> bool:
    """A refusal caused by the merchant's set-up (bad key, field), not by the customer's card."""
    text = message.lower().replace(" ", "")
    return any(word.replace(" ", "") in text for word in _MERCHANT_ERRORS)


def outcome_of_reply(reply: GatewayReply[OrderInfo]) -> SendOutcome:
    """Translate a purchase or query reply into attempt vocabulary."""
    data = reply.data
    if not reply.ok:
        return SendOutcome(AttemptState.FAILED, reason=reply.ret_msg or "declined",
                           decline_kind=classify_decline(reply.ret_msg or ""))
    status = data.status if data else None
    state = state_for_status(status)
    pay_order_id = data.pay_order_id if data else None
    if state is AttemptState.FAILED:
        reason = reply.ret_msg or "declined"
        return SendOutcome(state, status, pay_order_id, reason, classify_decline(reason))
    return SendOutcome(state, status, pay_order_id)


def apply_outcome(
    session: Session,
    attempt: PaymentAttempt,
    outcome: SendOutcome,
    at: datetime,
    config: EngineConfig,
    *,
    source: str,
) -> None:
    """Move ``attempt`` (and its invoice) by ``outcome``; safe to call again with the same facts."""
    if outcome.state is AttemptState.FAILED_NOT_SENT and outcome.lease_until is not None and (
            attempt.lease_until != outcome.lease_until):
        return  # taken over since: the new holder's outcome is the one that counts
    current = AttemptState(attempt.state)
    if outcome.pay_order_id and not attempt.pay_order_id:
        attempt.pay_order_id = outcome.pay_order_id
    if outcome.gateway_status is not None and attempt.gateway_status != outcome.gateway_status:
        attempt.gateway_status = outcome.gateway_status
    if attempt.lease_owner is not None or attempt.lease_until is not None:
        attempt.lease_owner, attempt.lease_until = None, None
    if current is AttemptState.SUCCEEDED:
        return  # final: nothing else to learn, and no need to load the invoice
    invoice = session.get(Invoice, attempt.invoice_id)
    assert invoice is not None
    if outcome.state is AttemptState.SUCCEEDED:
        _succeed(session, invoice, attempt, at, source)
    elif outcome.state is AttemptState.FAILED:
        if current not in FINAL:
            _fail(session, invoice, attempt, outcome, at, config, source)
    elif outcome.state is AttemptState.FAILED_NOT_SENT:
        if current is AttemptState.SENDING:
            attempt.state, attempt.resolved_at = outcome.state.value, at
            attempt.failure_reason = (outcome.reason or "not sent")[:200]
            if invoice.status == "open" and invoice.next_attempt_at is None:
                invoice.next_attempt_at = at + NOT_SENT_BACKOFF
            _log(session, attempt, invoice, at, "payment.not_sent", source, outcome.reason)
    elif current not in FINAL:
        attempt.state = outcome.state.value
        attempt.next_check_at = next_check(at, attempt.check_count)
        attempt.check_count += 1
        _log(session, attempt, invoice, at, f"payment.{outcome.state.value}", source,
             outcome.reason)


def _log(session: Session, attempt: PaymentAttempt, invoice: Invoice, at: datetime, kind: str,
         source: str, reason: str | None = None) -> None:
    record_event(session, at, kind, customer_id=invoice.customer_id,
                 subscription_id=invoice.subscription_id, invoice_id=invoice.id,
                 mch_order_no=attempt.mch_order_no, attempt=attempt.attempt_no, source=source,
                 reason=reason)


def _succeed(session: Session, invoice: Invoice, attempt: PaymentAttempt, at: datetime,
             source: str) -> None:
    # A success pays its invoice in the same transaction and nothing reopens an invoice, so only
    # an invoice that is no longer open can have another succeeded attempt (the partial unique
    # index on succeeded attempts is the backstop).
    other = None if invoice.status == "open" else session.scalar(
        select(PaymentAttempt.id).where(
            PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.state == "succeeded",
            PaymentAttempt.id != attempt.id))
    if other is not None:
        attempt.state, attempt.next_check_at = AttemptState.UNKNOWN.value, None
        attempt.failure_reason = "charged after the invoice was already paid: refund it"
        _log(session, attempt, invoice, at, "alert.double_charge", source)
        return
    attempt.state, attempt.resolved_at = AttemptState.SUCCEEDED.value, at
    attempt.next_check_at, attempt.failure_reason = None, None
    _log(session, attempt, invoice, at, "payment.succeeded", source)
    settle_paid(session, invoice, attempt, at)


def _fail(session: Session, invoice: Invoice, attempt: PaymentAttempt, outcome: SendOutcome,
          at: datetime, config: EngineConfig, source: str) -> None:
    reason = outcome.reason or "declined"
    attempt.state, attempt.resolved_at = AttemptState.FAILED.value, at
    attempt.failure_reason, attempt.next_check_at = reason[:200], None
    kind = outcome.decline_kind or classify_decline(reason)
    attempt.decline_kind = kind.value
    if invoice.status != "open":
        return
    if is_merchant_error(reason):
        invoice.next_attempt_at = at + MERCHANT_ERROR_BACKOFF
        _log(session, attempt, invoice, at, "alert.gateway_rejected", source, reason)
        return
    _log(session, attempt, invoice, at, "payment.declined", source, reason)
    record_decline(session, invoice, at, config, hard=kind is DeclineKind.HARD, reason=reason)


def record_decline(session: Session, invoice: Invoice, at: datetime, config: EngineConfig, *,
                   hard: bool, reason: str) -> None:
    """Put ``invoice`` into (or further into) dunning after a failed or impossible charge."""
    if invoice.dunning_started_at is None:
        invoice.dunning_started_at = at
        invoice.dunning_plan = dunning_snapshot(session, invoice).to_json()
    assert invoice.dunning_plan is not None
    plan = DunningPlan.from_json(invoice.dunning_plan)
    if hard:
        invoice.hard_declined, invoice.next_attempt_at = True, None
    elif not invoice.dunning_final_done:
        invoice.next_attempt_at = next_retry(plan, invoice.dunning_started_at, at)
    else:
        invoice.next_attempt_at = None
    sub = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    if sub is not None:
        apply_transition(session, sub, SubEvent.PAYMENT_FAILED, at, reason=reason[:100])
        advance_dunning(session, sub, at, config, reason=reason)
