"""Reconciliation: resolve every attempt whose outcome we don't know, before anything else.

Candidates are attempts ``pending`` or ``unknown`` whose next check is due, and attempts still
``sending`` after their lease expired (their process died between intent and record). Each is
leased, then looked up with ``cc_query`` by its ``mchOrderNo`` outside any transaction:

* found, paid (2/3) -> succeeded; found, failed (9) -> failed, dunning goes on;
* found, still 0/1 -> checked again on the backoff (1 min, 5 min, 1 h, then daily);
* found, but the order found is not the one asked (another amount, currency or merchant, as
  after a database restore that issued a number again) -> a discrepancy: nothing is applied,
  an alert is raised, and it is looked up again on the backoff;
* **no such order** for a pay-now attempt -> the customer has not paid the hosted page yet:
  looked up again until its lifetime ends, then **watched** (``decide`` says which): no longer
  holding its invoice, but still looked up on the backoff for ``PAY_NOW_WATCH``, so a late
  payment of the still-open page is recorded even if its notify never comes; a pay-now order
  unsettled or unanswered a grace period past its lifetime is watched the same way;
* **no such order** otherwise -> the request never took effect, so the *same* order number is
  sent again: the gateway charges a ``mchOrderNo`` at most once, so this can never
  double-charge, whereas a new number could if the first request were merely delayed;
* the query itself fails -> nothing changes but the next check time.

Unprocessed notifications (stored but not applied because the process died or applying failed)
are re-applied by the same tick, and refunds whose outcome is unknown are looked up the same way
(``refunds.resolve_due_refunds``). One item whose handling raises is recorded and backed off
(``billing.services.isolation``); the others go on.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select

from billing.domain.invoices import InvoiceStatus
from billing.domain.payments import (
    IN_FLIGHT,
    AttemptSource,
    AttemptState,
    Outcome,
    OutcomeKind,
    Source,
    next_check,
)
from billing.faults import crashpoint
from billing.gateway import GatewayError, outcome_of_query
from billing.services.claims import claim_rows, lease_free
from billing.services.collection import Intent, record, send, user_ref
from billing.services.events import record_event
from billing.services.isolation import ItemError, clear_failures, not_backed_off, record_failure
from billing.services.notifications import apply_pending_notifications
from billing.services.ports import Deps
from billing.services.refunds import resolve_due_refunds
from billing.store.models import Customer, Invoice, PaymentAttempt
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class ReconcileSummary:
    checked: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    notifications: int = 0
    refunds: int = 0
    failed: list[ItemError] = field(default_factory=list)


KIND = "reconcile.attempt"


def _claim(deps: Deps, at: datetime, limit: int) -> list[Intent]:
    unresolved = or_(
        and_(PaymentAttempt.state.in_([AttemptState.PENDING, AttemptState.UNKNOWN,
                                       AttemptState.WATCHED]),
             PaymentAttempt.next_check_at <= at, lease_free(PaymentAttempt, at)),
        and_(PaymentAttempt.state == AttemptState.SENDING,
             or_(PaymentAttempt.lease_until.is_(None), PaymentAttempt.lease_until < at)),
    )
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        rows = claim_rows(session, PaymentAttempt,
                          [unresolved, not_backed_off(KIND, PaymentAttempt.id, at)],
                          [PaymentAttempt.next_check_at, PaymentAttempt.id], limit)
        intents = []
        leased_at = deps.clock.now()  # not ``at``: this tick may have been running a while
        for att in rows:
            att.lease_owner = deps.config.worker
            att.lease_until = leased_at + deps.config.query_lease
            invoice = session.get(Invoice, att.invoice_id)
            assert invoice is not None
            customer = session.get(Customer, invoice.customer_id)
            assert customer is not None
            intents.append(Intent(att.id, att.mch_order_no, att.amount, att.currency,
                                  att.gateway_card_id, user_ref(customer),
                                  f"Invoice {invoice.number}"[:64],
                                  hosted=att.source == AttemptSource.PAY_NOW))
        uow.commit()
    return intents


def _check_failed(deps: Deps, attempt_id: int, at: datetime, why: str) -> str:
    with UnitOfWork(deps.store) as uow:
        att = uow.session.get(PaymentAttempt, attempt_id, with_for_update=True)
        assert att is not None
        if att.lease_owner not in (None, deps.config.worker):
            return att.state  # another worker holds it now; leave it to them
        att.next_check_at = next_check(at, att.check_count)
        att.check_count += 1
        att.lease_owner, att.lease_until = None, None
        if att.state == AttemptState.SENDING:
            att.state = AttemptState.UNKNOWN
        state = att.state
        uow.commit()
    log.warning("could not resolve %s: %s", attempt_id, why)
    return state


def _resend_same_order(deps: Deps, intent: Intent, at: datetime) -> str:
    """The gateway has no such order: send it again under the same number, if still wanted."""
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        att = session.get(PaymentAttempt, intent.attempt_id, with_for_update=True)
        assert att is not None
        invoice = session.get(Invoice, att.invoice_id, with_for_update=True)
        assert invoice is not None
        if att.lease_owner != deps.config.worker or att.state not in IN_FLIGHT:
            return att.state
        if invoice.status != InvoiceStatus.OPEN:
            _not_wanted(att, at)
            uow.commit()
            return att.state
        att.state, att.lease_until = AttemptState.SENDING, (
            deps.clock.now() + deps.config.send_lease)
        intent = replace(intent, lease_until=att.lease_until)
        record_event(session, at, "payment.resent_same_order", invoice_id=invoice.id,
                     customer_id=invoice.customer_id, subscription_id=invoice.subscription_id,
                     mch_order_no=att.mch_order_no)
        uow.commit()
    crashpoint("before_resend")
    outcome = replace(send(deps, intent, Source.RESEND), lease_until=intent.lease_until)
    return record(deps, intent.attempt_id, outcome)


GIVE_UP_AFTER = timedelta(days=1)
"""How long an order the gateway keeps saying it does not have is looked up, once its invoice no
longer wants it, before it is closed as never sent: a slow gateway can still be processing it."""
GIVE_UP_CHECKS = 3


def _not_wanted(att: PaymentAttempt, at: datetime) -> None:
    """"No such order" for an invoice no longer open: not re-sent (nobody wants the charge), but
    a request that may still land is looked up on the backoff for a day and a few checks before
    it is closed; a late charge found meanwhile is recorded (money taken is never dropped)."""
    att.lease_owner, att.lease_until = None, None
    if at - att.created_at >= GIVE_UP_AFTER and att.check_count >= GIVE_UP_CHECKS:
        att.state, att.resolved_at = AttemptState.FAILED_NOT_SENT, at
        att.failure_reason = "no such order at the gateway; invoice no longer open"
        return
    att.state = AttemptState.UNKNOWN
    att.next_check_at = next_check(at, att.check_count)
    att.check_count += 1


def resolve(deps: Deps, intent: Intent, at: datetime) -> str:
    """Look one unresolved attempt up and apply what the gateway says."""
    try:
        reply = deps.gateway.cc_query(mch_order_no=intent.mch_order_no)
    except GatewayError as exc:
        if intent.hosted:  # decide() owns a hosted page's deadlines, unanswered included
            return record(deps, intent.attempt_id, Outcome(
                OutcomeKind.NO_ANSWER, Source.QUERY, reason=type(exc).__name__))
        return _check_failed(deps, intent.attempt_id, at, type(exc).__name__)
    crashpoint("after_query")
    outcome = outcome_of_query(reply)
    if intent.hosted:
        return record(deps, intent.attempt_id, outcome)
    if outcome.kind is OutcomeKind.NOT_FOUND:
        return _resend_same_order(deps, intent, at)
    if outcome.kind is OutcomeKind.NO_ANSWER:
        return _check_failed(deps, intent.attempt_id, at, outcome.reason or "no answer")
    return record(deps, intent.attempt_id, outcome)


def _resolve_isolated(deps: Deps, intent: Intent, at: datetime,
                      failed: list[ItemError]) -> str:
    """``resolve``, with an error on this attempt recorded and backed off instead of raised."""
    try:
        state = resolve(deps, intent, at)
    except Exception as exc:
        failed.append(record_failure(deps, "reconcile", KIND, intent.attempt_id, at, exc,
                                     attempt_id=intent.attempt_id))
        return "error"
    if state not in IN_FLIGHT:
        with UnitOfWork(deps.store) as uow:
            clear_failures(uow.session, KIND, [intent.attempt_id], at)
            uow.commit()
    return state


def reconcile(deps: Deps, *, at: datetime | None = None,
              stop: threading.Event | None = None) -> ReconcileSummary:
    """One reconciliation tick: re-apply stored notifies, then query every unresolved attempt,
    then resolve unknown refunds. An attempt, notify or refund whose handling raises is
    recorded and backed off; the others go on."""
    at = at or deps.clock.now()
    summary = ReconcileSummary()
    summary.notifications = apply_pending_notifications(deps, at=at, failed=summary.failed)
    size = max(deps.config.batch_size, deps.config.charge_concurrency)
    with ThreadPoolExecutor(deps.config.charge_concurrency, "reconcile") as pool:
        while stop is None or not stop.is_set():
            intents = _claim(deps, at, size)
            for state in pool.map(lambda i: _resolve_isolated(deps, i, at, summary.failed),
                                  intents):
                summary.checked += 1
                summary.outcomes[state] += 1
            if len(intents) < size:
                break
    summary.refunds = resolve_due_refunds(deps, at=at, failed=summary.failed)
    return summary


def unresolved_attempts(deps: Deps) -> int:
    """How many attempts are not final: what an operator watches after an outage."""
    with UnitOfWork(deps.store) as uow:
        rows = uow.session.scalars(select(PaymentAttempt.id).where(
            PaymentAttempt.state.in_(IN_FLIGHT)))
        return len(list(rows))
