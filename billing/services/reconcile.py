"""Reconciliation: resolve every attempt whose outcome we don't know, before anything else.

Candidates are attempts ``pending`` or ``unknown`` whose next check is due, and attempts still
``sending`` after their lease expired (their process died between intent and record). Each is
leased, then looked up with ``cc_query`` by its ``mchOrderNo`` outside any transaction:

* found, paid (2/3) -> succeeded; found, failed (9) -> failed, dunning goes on;
* found, still 0/1 -> checked again on the backoff (1 min, 5 min, 1 h, then daily);
* **no such order** -> the request never took effect, so the *same* order number is sent again:
  the gateway charges a ``mchOrderNo`` at most once, so this can never double-charge, whereas a
  new number could if the first request were merely delayed;
* the query itself fails -> nothing changes but the next check time.

Unprocessed notifications (stored but not applied because the process died or applying failed)
are re-applied by the same tick, and refunds whose outcome is unknown are looked up the same way
(``refunds.resolve_due_refunds``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import and_, or_, select

from billing.domain.payments import AttemptState, next_check
from billing.faults import crashpoint
from billing.gateway import GatewayError
from billing.services.claims import claim_rows, lease_free
from billing.services.collection import Intent, record, send, user_ref
from billing.services.events import record_event
from billing.services.notifications import apply_pending_notifications
from billing.services.payments import outcome_of_reply
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


def _claim(deps: Deps, at: datetime, limit: int) -> list[Intent]:
    unresolved = or_(
        and_(PaymentAttempt.state.in_([AttemptState.PENDING.value, AttemptState.UNKNOWN.value]),
             PaymentAttempt.next_check_at <= at, lease_free(PaymentAttempt, at)),
        and_(PaymentAttempt.state == AttemptState.SENDING.value,
             or_(PaymentAttempt.lease_until.is_(None), PaymentAttempt.lease_until < at)),
    )
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        rows = claim_rows(session, PaymentAttempt, [unresolved],
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
                                  f"Invoice {invoice.number}"[:64]))
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
        if att.state == AttemptState.SENDING.value:
            att.state = AttemptState.UNKNOWN.value
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
        if att.lease_owner != deps.config.worker or att.state not in (
            AttemptState.SENDING.value, AttemptState.PENDING.value, AttemptState.UNKNOWN.value
        ):
            return att.state
        if invoice.status != "open":
            att.state, att.resolved_at = AttemptState.FAILED_NOT_SENT.value, at
            att.failure_reason = "no such order at the gateway; invoice no longer open"
            att.lease_owner, att.lease_until = None, None
            uow.commit()
            return att.state
        att.state, att.lease_until = AttemptState.SENDING.value, (
            deps.clock.now() + deps.config.send_lease)
        intent = replace(intent, lease_until=att.lease_until)
        record_event(session, at, "payment.resent_same_order", invoice_id=invoice.id,
                     customer_id=invoice.customer_id, subscription_id=invoice.subscription_id,
                     mch_order_no=att.mch_order_no)
        uow.commit()
    crashpoint("before_resend")
    outcome = replace(send(deps, intent), lease_until=intent.lease_until)
    return record(deps, intent.attempt_id, outcome, source="resend")


def resolve(deps: Deps, intent: Intent, at: datetime) -> str:
    """Look one unresolved attempt up and apply what the gateway says."""
    try:
        reply = deps.gateway.cc_query(mch_order_no=intent.mch_order_no)
    except GatewayError as exc:
        return _check_failed(deps, intent.attempt_id, at, type(exc).__name__)
    crashpoint("after_query")
    if reply.order_not_found:
        return _resend_same_order(deps, intent, at)
    if not reply.ok or reply.data is None:
        return _check_failed(deps, intent.attempt_id, at, reply.ret_msg)
    return record(deps, intent.attempt_id, outcome_of_reply(reply), source="query")


def reconcile(deps: Deps, *, at: datetime | None = None,
              stop: threading.Event | None = None) -> ReconcileSummary:
    """One reconciliation tick: re-apply stored notifies, then query every unresolved attempt."""
    at = at or deps.clock.now()
    summary = ReconcileSummary(notifications=apply_pending_notifications(deps))
    size = max(deps.config.batch_size, deps.config.charge_concurrency)
    with ThreadPoolExecutor(deps.config.charge_concurrency, "reconcile") as pool:
        while stop is None or not stop.is_set():
            intents = _claim(deps, at, size)
            for state in pool.map(lambda i: resolve(deps, i, at), intents):
                summary.checked += 1
                summary.outcomes[state] += 1
            if len(intents) < size:
                break
    summary.refunds = resolve_due_refunds(deps, at=at)
    return summary


def unresolved_attempts(deps: Deps) -> int:
    """How many attempts are not final: what an operator watches after an outage."""
    with UnitOfWork(deps.store) as uow:
        rows = uow.session.scalars(select(PaymentAttempt.id).where(PaymentAttempt.state.in_(
            [AttemptState.SENDING.value, AttemptState.PENDING.value,
             AttemptState.UNKNOWN.value])))
        return len(list(rows))
