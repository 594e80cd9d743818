"""Dunning: escalate the oldest unpaid invoice of a subscription as it ages.

Decisions come from ``billing.domain.dunning.decide``; this module applies them: it writes the
email to the outbox and the step to the invoice in the caller's transaction (so the email exists
exactly when the state change does), schedules the retry that must precede an escalation, and
runs the final action. ``run_dunning`` is the tick; payment code calls ``advance_dunning`` right
after a decline so the first email goes out with the failure that caused it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from billing.domain.calendar import local_date
from billing.domain.dunning import (
    DunningDecision,
    DunningEmail,
    DunningPlan,
    DunningState,
    DunningStep,
    FinalAction,
    Verdict,
    decide,
)
from billing.domain.money import Money
from billing.domain.payments import IN_FLIGHT
from billing.domain.subscriptions import Event as SubEvent
from billing.services.claims import claim_rows
from billing.services.events import record_event
from billing.services.lifecycle import apply_transition
from billing.services.links import update_card_url
from billing.services.outbox import enqueue_email
from billing.services.ports import Deps, EngineConfig
from billing.store.models import (
    Customer,
    DunningPolicyRow,
    Invoice,
    PaymentAttempt,
    Plan,
    Subscription,
)
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)
_FINAL_EVENTS = {
    FinalAction.CANCEL: SubEvent.DUNNING_CANCEL,
    FinalAction.MARK_UNPAID: SubEvent.DUNNING_MARK_UNPAID,
    FinalAction.LEAVE_PAST_DUE: SubEvent.DUNNING_LEAVE_PAST_DUE,
}
_FALLBACK = DunningPlan((), (DunningStep(timedelta(0), DunningEmail.PAYMENT_FAILED),),
                        timedelta(days=14), FinalAction.LEAVE_PAST_DUE)


def dunning_snapshot(session: Session, invoice: Invoice) -> DunningPlan:
    """The retry schedule and policy an invoice keeps from its first failure on."""
    sub = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    plan = session.get(Plan, sub.plan_id) if sub else None
    policy = session.get(DunningPolicyRow, plan.dunning_policy) if plan else None
    if plan is None or policy is None:
        return _FALLBACK
    data = dict(policy.definition)
    data["retry"] = list(plan.retry_schedule)
    return DunningPlan.from_json(data)


def _oldest_unpaid(session: Session, sub_id: int) -> Invoice | None:
    return session.scalar(
        select(Invoice).where(Invoice.subscription_id == sub_id, Invoice.status == "open",
                              Invoice.dunning_started_at.is_not(None))
        .order_by(Invoice.dunning_started_at, Invoice.id).limit(1))


def _attempt_open(session: Session, invoice: Invoice, at: datetime) -> bool:
    if invoice.next_attempt_at is not None and invoice.next_attempt_at <= at:
        return True
    return bool(session.scalar(select(exists().where(
        PaymentAttempt.invoice_id == invoice.id,
        PaymentAttempt.state.in_([s.value for s in IN_FLIGHT])))))


def _state(session: Session, invoice: Invoice, at: datetime) -> DunningState:
    assert invoice.dunning_started_at is not None
    return DunningState(
        started_at=invoice.dunning_started_at, steps_done=invoice.dunning_step,
        final_done=invoice.dunning_final_done,
        escalated=invoice.last_escalation_at is not None,
        attempts_since_escalation=invoice.attempt_count - invoice.escalated_after_attempts,
        attempt_open=_attempt_open(session, invoice, at), hard_declined=invoice.hard_declined,
    )


def advance_dunning(session: Session, sub: Subscription, at: datetime, config: EngineConfig,
                    *, reason: str | None = None) -> list[DunningDecision]:
    """Apply every dunning move due now for ``sub``'s oldest unpaid invoice."""
    invoice = _oldest_unpaid(session, sub.id)
    if invoice is None or invoice.dunning_plan is None:
        return []
    plan = DunningPlan.from_json(invoice.dunning_plan)
    taken: list[DunningDecision] = []
    for _ in range(len(plan.steps) + 2):
        decision = decide(plan, _state(session, invoice, at), at)
        if decision.verdict in (Verdict.NOTHING, Verdict.WAIT):
            break
        taken.append(decision)
        if decision.verdict is Verdict.RETRY_FIRST:
            invoice.next_attempt_at = at
            record_event(session, at, "dunning.retry_before_escalation", invoice_id=invoice.id,
                         subscription_id=sub.id, customer_id=sub.customer_id)
            break
        invoice.last_escalation_at = at
        invoice.escalated_after_attempts = invoice.attempt_count
        if decision.email is not None and decision.step_index is not None:
            invoice.dunning_step = decision.step_index + 1
            _send_notice(session, sub, invoice, plan, decision, at, config, reason)
        elif decision.final_action is not None:
            invoice.dunning_final_done = True
            _final_action(session, sub, decision.final_action, at)
    return taken


def _send_notice(session: Session, sub: Subscription, invoice: Invoice, plan: DunningPlan,
                 decision: DunningDecision, at: datetime, config: EngineConfig,
                 reason: str | None) -> None:
    assert decision.email is not None and invoice.dunning_started_at is not None
    customer = session.get(Customer, sub.customer_id)
    assert customer is not None
    final_at = invoice.dunning_started_at + plan.final_after
    context = {
        "merchant_name": config.merchant_name,
        "customer_name": customer.name,
        "invoice_number": invoice.number,
        "amount": Money(invoice.total - invoice.amount_paid, invoice.currency).format(),
        "reason": reason or _last_reason(session, invoice) or "the payment was declined",
        "next_retry": _day(invoice.next_attempt_at, customer.timezone),
        "update_card_url": update_card_url(config, customer.id, at),
        "due_date": _day(invoice.due_at, customer.timezone),
        "final_action": plan.final_action.value,
        "final_date": _day(final_at, customer.timezone),
    }
    enqueue_email(session, at=at, template=decision.email.value, to=customer.email,
                  context=context, dedupe_key=f"dunning:{invoice.id}:{decision.step_index}",
                  customer_id=customer.id, invoice_id=invoice.id, locale=customer.locale)
    record_event(session, at, "dunning.email_queued", customer_id=customer.id,
                 subscription_id=sub.id, invoice_id=invoice.id, email=decision.email.value,
                 step=decision.step_index)


def _last_reason(session: Session, invoice: Invoice) -> str | None:
    return session.scalar(select(PaymentAttempt.failure_reason).where(
        PaymentAttempt.invoice_id == invoice.id).order_by(PaymentAttempt.attempt_no.desc())
        .limit(1))


def _day(at: datetime | None, tz: str) -> str | None:
    return local_date(at, tz).isoformat() if at is not None else None


def _final_action(session: Session, sub: Subscription, action: FinalAction,
                  at: datetime) -> None:
    """Stop retrying and apply the policy's last word to the subscription."""
    apply_transition(session, sub, _FINAL_EVENTS[action], at, reason="dunning_exhausted")
    open_invoices = session.scalars(select(Invoice).where(
        Invoice.subscription_id == sub.id, Invoice.status == "open"))
    for inv in open_invoices:
        inv.next_attempt_at = None
        if action is FinalAction.CANCEL:
            inv.status = "uncollectible"
    if action is FinalAction.CANCEL:
        sub.canceled_at, sub.next_renewal_at = at, None
    record_event(session, at, "dunning.final_action", subscription_id=sub.id,
                 customer_id=sub.customer_id, action=action.value)


@dataclass
class DunningSummary:
    subscriptions: int = 0
    moves: int = 0


def run_dunning(deps: Deps, *, at: datetime | None = None) -> DunningSummary:
    """One dunning tick over every subscription with an invoice in dunning."""
    at = at or deps.clock.now()
    summary = DunningSummary()
    last_id = 0
    while True:
        with UnitOfWork(deps.store) as uow:
            in_dunning = select(Invoice.subscription_id).where(
                Invoice.status == "open", Invoice.dunning_started_at.is_not(None),
                Invoice.dunning_final_done.is_(False))
            subs = claim_rows(uow.session, Subscription,
                              [Subscription.id.in_(in_dunning), Subscription.id > last_id],
                              [Subscription.id], deps.config.batch_size)
            for sub in subs:
                summary.moves += len(advance_dunning(uow.session, sub, at, deps.config))
            uow.commit()
        summary.subscriptions += len(subs)
        if len(subs) < deps.config.batch_size:
            return summary
        last_id = subs[-1].id
