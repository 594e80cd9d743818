"""Collection: charge due invoices, exactly once.

Three phases per batch, each with its own reason:

1. **Intent** (one transaction): claim due invoices (``FOR UPDATE SKIP LOCKED`` on PostgreSQL)
   and commit a ``sending`` payment attempt with its ``mchOrderNo`` for each, before any request
   leaves. A crash after this commit leaves a ``sending`` row that reconciliation resolves.
2. **Send** (no transaction, no lock held): ``cc_purchasewithtoken`` in a bounded thread pool,
   so gateway latency overlaps instead of serializing a billing day.
3. **Record** (one short transaction per attempt): apply the outcome through
   ``billing.services.payments.apply_outcome``, the same function notifies and queries use.

A transport error is classified by what was sent: *not sent* may be retried with a new attempt;
*unknown* is only ever resolved with ``cc_query`` (see ``billing.services.reconcile``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from billing.domain.payments import IN_FLIGHT, AttemptState, SendOutcome, order_number
from billing.faults import crashpoint
from billing.gateway import (
    GatewayError,
    GatewayNotSent,
    GatewayOutcomeUnknown,
    GatewayRequestInvalid,
)
from billing.services.claims import claim_rows
from billing.services.events import record_event
from billing.services.installation import order_prefix
from billing.services.payments import apply_outcome, outcome_of_reply, record_decline
from billing.services.ports import Deps
from billing.store.models import Card, Customer, Invoice, PaymentAttempt, Subscription
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intent:
    """Everything needed to send one attempt, copied out of the session that created it."""

    attempt_id: int
    mch_order_no: str
    amount: int
    currency: str
    card_id: str
    user_ref: str
    subject: str


@dataclass
class CollectSummary:
    attempts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, state: str) -> None:
        self.attempts += 1
        self.outcomes[state] += 1


def _card_for(session: Session, invoice: Invoice) -> Card | None:
    sub = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    card = session.get(Card, sub.card_id) if sub is not None and sub.card_id else None
    if card is not None and card.status == "active":
        return card
    newest = session.scalar(select(Card).where(
        Card.customer_id == invoice.customer_id, Card.status == "active")
        .order_by(Card.id.desc()).limit(1))
    if newest is not None and sub is not None:
        sub.card_id = newest.id
    return newest


def user_ref(customer: Customer) -> str:
    """``mchUserId`` (at most 30 characters): the merchant's id when it fits."""
    return customer.external_id if len(customer.external_id) <= 30 else f"#{customer.id}"


def _intent(session: Session, invoice: Invoice, card: Card, prefix: str, deps: Deps,
            at: datetime) -> Intent:
    number = invoice.attempt_count + 1
    attempt = PaymentAttempt(
        invoice_id=invoice.id, attempt_no=number,
        mch_order_no=order_number(prefix, invoice.id, number),
        amount=invoice.total - invoice.amount_paid, currency=invoice.currency,
        gateway_card_id=card.gateway_card_id, state=AttemptState.SENDING.value, created_at=at,
        sent_at=at, check_count=0, lease_owner=deps.config.worker,
        lease_until=at + deps.config.send_lease,
    )
    session.add(attempt)
    invoice.attempt_count, invoice.next_attempt_at, invoice.last_attempt_at = number, None, at
    session.flush()
    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None
    record_event(session, at, "payment.attempt_started", customer_id=customer.id,
                 subscription_id=invoice.subscription_id, invoice_id=invoice.id,
                 mch_order_no=attempt.mch_order_no, attempt=number, amount=attempt.amount,
                 worker=deps.config.worker)
    return Intent(attempt.id, attempt.mch_order_no, attempt.amount, attempt.currency,
                  card.gateway_card_id, user_ref(customer), f"Invoice {invoice.number}"[:64])


def create_intents(deps: Deps, at: datetime, limit: int) -> tuple[list[Intent], int]:
    """Phase 1: claim due invoices and commit one ``sending`` attempt for each.

    Returns the intents and how many invoices were claimed (some need no request: no card).
    """
    in_flight = exists().where(PaymentAttempt.invoice_id == Invoice.id,
                               PaymentAttempt.state.in_([s.value for s in IN_FLIGHT]))
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        invoices = claim_rows(session, Invoice, [
            Invoice.status == "open", Invoice.next_attempt_at <= at, Invoice.total > 0, ~in_flight,
        ], [Invoice.next_attempt_at, Invoice.id], limit)
        intents: list[Intent] = []
        prefix = order_prefix(session) if invoices else ""
        for invoice in invoices:
            card = _card_for(session, invoice)
            if card is None:
                invoice.next_attempt_at = None
                record_event(session, at, "payment.no_card", invoice_id=invoice.id,
                             customer_id=invoice.customer_id,
                             subscription_id=invoice.subscription_id)
                record_decline(session, invoice, at, deps.config, hard=True,
                               reason="no card on file")
                continue
            intents.append(_intent(session, invoice, card, prefix, deps, at))
        uow.commit()
    crashpoint("after_intent")
    return intents, len(invoices)


def send(deps: Deps, intent: Intent) -> SendOutcome:
    """Phase 2: one purchase request, its every failure classified by what was sent."""
    try:
        reply = deps.gateway.cc_purchasewithtoken(
            mch_order_no=intent.mch_order_no, mch_user_id=intent.user_ref,
            card_id=intent.card_id, amount=intent.amount, currency=intent.currency,
            notify_url=deps.config.notify_url, subject=intent.subject,
        )
    except GatewayNotSent as exc:
        return SendOutcome(AttemptState.FAILED_NOT_SENT, reason=str(exc))
    except GatewayRequestInvalid as exc:
        return SendOutcome(AttemptState.FAILED_NOT_SENT, reason=f"rejected locally: {exc}")
    except GatewayOutcomeUnknown as exc:
        return SendOutcome(AttemptState.UNKNOWN, reason=str(exc))
    except (GatewayError, Exception) as exc:  # anything else: we cannot know if it was sent
        log.exception("unexpected error sending %s", intent.mch_order_no)
        return SendOutcome(AttemptState.UNKNOWN, reason=type(exc).__name__)
    return outcome_of_reply(reply)


def record(deps: Deps, attempt_id: int, outcome: SendOutcome, *, source: str) -> str:
    """Phase 3: apply an outcome in its own transaction; returns the attempt's new state."""
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        attempt = session.get(PaymentAttempt, attempt_id, with_for_update=True)
        assert attempt is not None
        session.get(Invoice, attempt.invoice_id, with_for_update=True)
        before = attempt.state
        apply_outcome(session, attempt, outcome, deps.clock.now(), deps.config, source=source)
        state, amount, currency = attempt.state, attempt.amount, attempt.currency
        uow.commit()
    deps.observe_charge(before, state, amount, currency)
    return state


def send_and_record(deps: Deps, intent: Intent, stop: threading.Event | None = None) -> str:
    if stop is not None and stop.is_set():
        # Stopping: this request has not left, so say so now rather than leave the attempt to
        # wait out its lease; the invoice is due again a minute later, for whoever ticks next.
        return record(deps, intent.attempt_id,
                      SendOutcome(AttemptState.FAILED_NOT_SENT, reason="stopped before sending"),
                      source="shutdown")
    outcome = send(deps, intent)
    crashpoint("after_send")
    try:
        state = record(deps, intent.attempt_id, outcome, source="purchase")
        crashpoint("after_record")
        return state
    except Exception:
        # The attempt stays ``sending`` under its lease; reconciliation resolves it later.
        log.exception("could not record the outcome of %s", intent.mch_order_no)
        return "unrecorded"


def collect_due(deps: Deps, *, at: datetime | None = None,
                stop: threading.Event | None = None) -> CollectSummary:
    """One collection tick: charge every due invoice, a batch at a time, sends in parallel."""
    at = at or deps.clock.now()
    summary = CollectSummary()
    # Claim a few rounds of the pool at a time, not the whole day: other daemons share the rest.
    size = min(deps.config.batch_size, deps.config.charge_concurrency * 4)
    with ThreadPoolExecutor(deps.config.charge_concurrency, "charge") as pool:
        while stop is None or not stop.is_set():
            intents, claimed = create_intents(deps, at, size)
            for state in pool.map(lambda i: send_and_record(deps, i, stop), intents):
                summary.add(state)
            if claimed < size:
                break
    return summary
