"""Applying what is learned about a payment attempt, whichever way it was learned.

The purchase reply, a ``cc_query`` answer and a signed notify all arrive here as an ``Outcome``
(``billing.gateway.outcomes``). ``apply_outcome`` asks the pure state machine
(``billing.domain.payments.decide``) what the attempt becomes, writes that, and carries out the
decision's effect on the invoice: settle it, put it into dunning, back it off after a set-up
error, let it be retried after a "not sent", schedule the next query, or, for an answer that
does not match what was asked, change nothing but raise an alert. Because ``decide`` is a join,
any arrival order of the same facts gives the same end state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.domain.dunning import DunningPlan, next_retry
from billing.domain.invoices import InvoiceStatus
from billing.domain.payments import (
    Attempt,
    AttemptDecision,
    AttemptSource,
    AttemptState,
    DeclineKind,
    Effect,
    Outcome,
    OutcomeKind,
    Source,
    check_after,
    decide,
    next_setup_retry,
)
from billing.domain.subscriptions import Event as SubEvent
from billing.services.alerts import raise_alert
from billing.services.claims import holds_lock
from billing.services.dunning import advance_dunning, dunning_snapshot
from billing.services.emails import queue_receipt
from billing.services.events import record_event
from billing.services.invoicing import settle_paid
from billing.services.lifecycle import apply_event
from billing.services.ports import EngineConfig
from billing.services.refunds import refund_duplicate
from billing.store.models import Card, Invoice, PaymentAttempt, Subscription

NOT_SENT_BACKOFF: tuple[timedelta, ...] = (
    timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=6),
)
"""Delay before charging again after the n-th attempt in a row that never reached the gateway."""


def facts(attempt: PaymentAttempt, config: EngineConfig,
          card_expiry: str | None = None) -> Attempt:
    """The stored attempt as the state machine reads it."""
    return Attempt(attempt.mch_order_no, attempt.amount, attempt.currency,
                   AttemptState(attempt.state), mch_id=config.mch_id,
                   card_id=attempt.gateway_card_id or None,  # "" for pay-now: no card asked
                   pay_order_id=attempt.pay_order_id,
                   lease_until=attempt.lease_until, card_expiry=card_expiry,
                   source=AttemptSource(attempt.source), expires_at=attempt.expires_at)


def _card_expiry(session: Session, attempt: PaymentAttempt) -> str | None:
    return session.scalar(select(Card.expiry).where(
        Card.gateway_card_id == attempt.gateway_card_id))


def apply_outcome(session: Session, attempt: PaymentAttempt, outcome: Outcome, at: datetime,
                  config: EngineConfig) -> AttemptDecision:
    """Move ``attempt`` (and its invoice) by ``outcome``; safe to call again with the same facts.
    The caller holds the attempt's row lock (and, for a batch, its invoices' in id order); the
    invoice's is taken here if the caller has not, after the attempt's, before it is read."""
    expiry = _card_expiry(session, attempt) if outcome.kind is OutcomeKind.DECLINED and (
        outcome.claims.expiry is None) else None
    decision = decide(facts(attempt, config, expiry), outcome, at)
    stale = outcome.kind in (OutcomeKind.NOT_SENT, OutcomeKind.REJECTED) and (
        decision.effect is Effect.NONE)
    if stale:
        return decision  # taken over since: the new holder's outcome is the one that counts
    before = AttemptState(attempt.state)
    attempt.lease_owner = attempt.lease_until = None
    if decision.pay_order_id and not attempt.pay_order_id:
        attempt.pay_order_id = decision.pay_order_id
    if decision.gateway_status is not None:
        attempt.gateway_status = decision.gateway_status
    if decision.effect is Effect.NONE:
        return decision
    # Locked (attempt before invoice, every writer's order) and read fresh: the decision that
    # the invoice still needs this money must see a credit committed meanwhile, never a total
    # read before it (a late notify would otherwise overpay an invoice a credit just reduced).
    if holds_lock(session, Invoice, attempt.invoice_id):  # a batch locked and read it already
        invoice = session.get(Invoice, attempt.invoice_id)
    else:
        invoice = session.get(Invoice, attempt.invoice_id, with_for_update=True,
                              populate_existing=True)
    assert invoice is not None
    source = outcome.source.value
    if decision.effect is Effect.SETTLE:
        _succeed(session, invoice, attempt, at, source)
        if attempt.state == AttemptState.SUCCEEDED and invoice.status == InvoiceStatus.PAID:
            queue_receipt(session, config, invoice, attempt, at)
    elif decision.effect is Effect.DISCREPANCY:
        _discrepancy(session, invoice, attempt, decision, outcome, at)
    elif decision.effect is Effect.CHECK_LATER:
        _check_later(session, invoice, attempt, decision, before, at, source)
    elif decision.effect in (Effect.DECLINE, Effect.SETUP_ERROR):
        _fail(session, invoice, attempt, decision, at, config, source)
    elif decision.effect is Effect.RETRY_SOON:
        _not_sent(session, invoice, attempt, decision, at, source)
    elif decision.effect is Effect.RELEASE:
        _release(session, invoice, attempt, decision, at, source)
    elif decision.effect is Effect.WATCH:
        _watch(session, invoice, attempt, decision, at, source)
    return decision


def _watch(session: Session, invoice: Invoice, attempt: PaymentAttempt,
           decision: AttemptDecision, at: datetime, source: str) -> None:
    """A pay-now page's time is over unpaid: the invoice is released (its schedule and dunning
    go on) but the order is still looked up, since the customer can pay the open page and its
    notify may never come; a retry or a new click queries it first (``services.watched``)."""
    attempt.state = AttemptState.WATCHED
    attempt.failure_reason = (decision.reason or "not paid in time")[:200]
    attempt.next_check_at = check_after(at, attempt.check_count, attempt.expires_at)
    attempt.check_count += 1
    _log(session, attempt, invoice, at, "payment.pay_now_watched", source, decision.reason)


def _release(session: Session, invoice: Invoice, attempt: PaymentAttempt,
             decision: AttemptDecision, at: datetime, source: str) -> None:
    """A pay-now ended unpaid: close the attempt and leave the invoice as it was, so its retry
    schedule and dunning carry on as if the customer had never clicked (a customer trying is
    never held against them); a refusal of the request itself still alerts the operator."""
    attempt.state, attempt.resolved_at = decision.state, at
    attempt.failure_reason = (decision.reason or "not paid")[:200]
    attempt.next_check_at, attempt.decline_kind = None, decision.decline
    _log(session, attempt, invoice, at, "payment.pay_now_ended", source, decision.reason)
    if decision.decline is DeclineKind.SETUP:
        raise_alert(session, at, "alert.gateway_rejected",
                    f"gateway_rejected:{attempt.failure_reason[:150]}",
                    reason=attempt.failure_reason, mch_order_no=attempt.mch_order_no,
                    invoice_id=invoice.id)


def _not_sent(session: Session, invoice: Invoice, attempt: PaymentAttempt,
              decision: AttemptDecision, at: datetime, source: str) -> None:
    """Nothing reached the gateway: try again, sooner after one blip, later when the gateway
    stays unreachable (no new order number every minute for hours), with one alert."""
    attempt.state, attempt.resolved_at = decision.state, at
    attempt.failure_reason = (decision.reason or "not sent")[:200]
    _log(session, attempt, invoice, at, "payment.not_sent", source, decision.reason)
    if invoice.status != InvoiceStatus.OPEN or invoice.next_attempt_at is not None:
        return
    in_a_row = _in_a_row(session, invoice, PaymentAttempt.state,
                         AttemptState.FAILED_NOT_SENT, len(NOT_SENT_BACKOFF))
    invoice.next_attempt_at = at + NOT_SENT_BACKOFF[max(in_a_row, 1) - 1]
    if in_a_row >= 3:
        raise_alert(session, at, "alert.gateway_unreachable", "gateway_unreachable",
                    reason=attempt.failure_reason, invoice_id=invoice.id)


def _log(session: Session, attempt: PaymentAttempt, invoice: Invoice, at: datetime, kind: str,
         source: str, reason: str | None = None) -> None:
    record_event(session, at, kind, customer_id=invoice.customer_id,
                 subscription_id=invoice.subscription_id, invoice_id=invoice.id,
                 mch_order_no=attempt.mch_order_no, attempt=attempt.attempt_no, source=source,
                 reason=reason)


def _check_later(session: Session, invoice: Invoice, attempt: PaymentAttempt,
                 decision: AttemptDecision, before: AttemptState, at: datetime,
                 source: str) -> None:
    attempt.state = decision.state
    attempt.next_check_at = check_after(at, attempt.check_count, attempt.expires_at)
    attempt.check_count += 1
    if decision.state is not before:
        _log(session, attempt, invoice, at, f"payment.{decision.state.value}", source,
             decision.reason)


def _discrepancy(session: Session, invoice: Invoice, attempt: PaymentAttempt,
                 decision: AttemptDecision, outcome: Outcome, at: datetime) -> None:
    """An answer about another order (a reused number, a forged or confused reply): apply
    nothing; if the attempt is unresolved it waits for a query, which is checked the same way."""
    if decision.state is not AttemptState(attempt.state):
        attempt.state = decision.state
    if attempt.state in (AttemptState.SENDING, AttemptState.PENDING, AttemptState.UNKNOWN,
                         AttemptState.WATCHED):
        attempt.next_check_at = check_after(at, attempt.check_count, attempt.expires_at)
        attempt.check_count += 1
    if outcome.source is Source.NOTIFY:
        return  # the notification keeps the discrepancy and raises its own alert
    claims = outcome.claims
    raise_alert(session, at, "alert.answer_discrepancy",
                f"answer_discrepancy:{attempt.mch_order_no}:{outcome.source.value}",
                customer_id=invoice.customer_id, subscription_id=invoice.subscription_id,
                invoice_id=invoice.id, mch_order_no=attempt.mch_order_no,
                source=outcome.source.value, fields=list(decision.mismatched),
                expected_amount=attempt.amount, got_amount=claims.amount,
                got_order=claims.mch_order_no, got_pay_order_id=claims.pay_order_id)


def _succeed(session: Session, invoice: Invoice, attempt: PaymentAttempt, at: datetime,
             source: str) -> None:
    """A proven success pays its invoice, if the invoice needed exactly this: open (or written
    off: money that comes is recorded) with ``attempt.amount`` due. Anything else (already paid
    by another attempt, credited to zero or below the amount, voided) is money taken twice: the
    attempt ends ``duplicate`` (final, outside both unique indexes, so any number of them can be
    recorded), an alert is raised and a refund of it is committed in this same transaction."""
    due = invoice.total - invoice.amount_paid
    needed = invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) and (
        attempt.amount == due)
    if not needed:
        _duplicate(session, invoice, attempt, at, source, due)
        return
    attempt.state, attempt.resolved_at = AttemptState.SUCCEEDED, at
    attempt.next_check_at, attempt.failure_reason = None, None
    _log(session, attempt, invoice, at, "payment.succeeded", source)
    settle_paid(session, invoice, attempt, at)


def _duplicate(session: Session, invoice: Invoice, attempt: PaymentAttempt, at: datetime,
               source: str, due: int) -> None:
    attempt.state, attempt.resolved_at = AttemptState.DUPLICATE, at
    attempt.next_check_at = None
    why = (f"invoice already {invoice.status}" if invoice.status != InvoiceStatus.OPEN
           else f"{due} due, {attempt.amount} charged")
    refund = refund_duplicate(session, attempt, at)
    attempt.failure_reason = (f"charged when not needed ({why}): " + (
        f"refund {refund.mch_refund_no} started" if refund else "refund it by hand"))[:200]
    _log(session, attempt, invoice, at, "payment.duplicate", source, attempt.failure_reason)
    raise_alert(session, at, "alert.double_charge", f"double_charge:{attempt.mch_order_no}",
                customer_id=invoice.customer_id, subscription_id=invoice.subscription_id,
                invoice_id=invoice.id, mch_order_no=attempt.mch_order_no, source=source,
                amount=attempt.amount, reason=why,
                refund=refund.mch_refund_no if refund else None)


def _fail(session: Session, invoice: Invoice, attempt: PaymentAttempt,
          decision: AttemptDecision, at: datetime, config: EngineConfig, source: str) -> None:
    reason = decision.reason or "declined"
    attempt.state, attempt.resolved_at = AttemptState.FAILED, at
    attempt.failure_reason, attempt.next_check_at = reason[:200], None
    attempt.decline_kind = decision.decline
    if invoice.status != InvoiceStatus.OPEN:
        return
    if decision.effect is Effect.SETUP_ERROR:
        invoice.next_attempt_at = next_setup_retry(at, _setup_refusals(session, invoice))
        _log(session, attempt, invoice, at, "payment.refused", source, reason)
        raise_alert(session, at, "alert.gateway_rejected", f"gateway_rejected:{reason[:150]}",
                    reason=reason, mch_order_no=attempt.mch_order_no, invoice_id=invoice.id)
        return
    _log(session, attempt, invoice, at, "payment.declined", source, reason)
    record_decline(session, invoice, at, config, hard=decision.decline is DeclineKind.HARD,
                   reason=reason)


def _setup_refusals(session: Session, invoice: Invoice) -> int:
    """How many of the invoice's latest attempts in a row were refused as set-up errors."""
    return _in_a_row(session, invoice, PaymentAttempt.decline_kind, DeclineKind.SETUP, 4)


def _in_a_row(session: Session, invoice: Invoice, column: Any, value: object,
              limit: int) -> int:
    """How many of the invoice's latest attempts (at most ``limit``) have ``column == value``."""
    # The customer's own pay-now tries are not the schedule's: they break no streak.
    values = session.scalars(select(column).where(
        PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.source != AttemptSource.PAY_NOW)
                             .order_by(PaymentAttempt.attempt_no.desc()).limit(limit))
    count = 0
    for found in values:
        if found != value:
            break
        count += 1
    return count


def record_decline(session: Session, invoice: Invoice, at: datetime, config: EngineConfig, *,
                   hard: bool, reason: str) -> None:
    """Put ``invoice`` into (or further into) dunning after a failed or impossible charge,
    as far as its subscription's status allows (a late failure changes nothing after cancel)."""
    sub = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    if sub is not None:
        decision = apply_event(session, sub, SubEvent.PAYMENT_FAILED, at, config.lifecycle,
                               reason=reason[:100])
        if not decision.dunning:  # unpaid, paused or canceled: dunning is over or on hold
            invoice.next_attempt_at = None
            invoice.hard_declined = invoice.hard_declined or hard
            return
    if invoice.dunning_started_at is None:
        invoice.dunning_started_at = at
        invoice.dunning_plan = dunning_snapshot(session, invoice).to_json()
    assert invoice.dunning_plan is not None
    plan = DunningPlan.from_json(invoice.dunning_plan)
    if hard:
        invoice.hard_declined, invoice.next_attempt_at = True, None
    elif not invoice.dunning_final_done:
        invoice.next_attempt_at = next_retry(plan, invoice.dunning_started_at,
                                             invoice.last_attempt_at or at, at)
    else:
        invoice.next_attempt_at = None
    if sub is not None:
        advance_dunning(session, sub, at, config, reason=reason)
