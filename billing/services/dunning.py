"""Dunning: escalate the oldest unpaid invoice of a subscription as it ages.

Decisions come from ``billing.domain.dunning.decide``; this module applies them: it writes the
email to the outbox and the step to the invoice in the caller's transaction (so the email exists
exactly when the state change does), schedules the retry that must precede an escalation, and
runs the final action. ``run_dunning`` is the tick; payment code calls ``advance_dunning`` right
after a decline so the first email goes out with the failure that caused it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

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
from billing.domain.invoices import InvoiceStatus
from billing.domain.payments import IN_FLIGHT
from billing.domain.subscriptions import Event as SubEvent
from billing.domain.subscriptions import Status
from billing.domain.subscriptions import decide as decide_lifecycle
from billing.services.claims import claim_rows
from billing.services.emails import formatter, queue
from billing.services.events import record_event
from billing.services.isolation import (
    ItemError,
    clear_failures,
    lock_one,
    not_backed_off,
    one_by_one,
)
from billing.services.lifecycle import apply_event
from billing.services.links import pay_now_url, update_card_url
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
    FinalAction.CANCEL: SubEvent.FINAL_CANCEL_DUE,
    FinalAction.MARK_UNPAID: SubEvent.FINAL_MARK_UNPAID_DUE,
    FinalAction.LEAVE_PAST_DUE: SubEvent.FINAL_LEAVE_PAST_DUE_DUE,
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
        select(Invoice).where(Invoice.subscription_id == sub_id,
                              Invoice.status == InvoiceStatus.OPEN,
                              Invoice.dunning_started_at.is_not(None))
        .order_by(Invoice.dunning_started_at, Invoice.id).limit(1))


def _attempt_open(session: Session, invoice: Invoice, at: datetime) -> bool:
    if invoice.next_attempt_at is not None and invoice.next_attempt_at <= at:
        return True
    return bool(session.scalar(select(exists().where(
        PaymentAttempt.invoice_id == invoice.id,
        PaymentAttempt.state.in_(IN_FLIGHT)))))


def _state(session: Session, invoice: Invoice, at: datetime) -> DunningState:
    assert invoice.dunning_started_at is not None
    return DunningState(
        started_at=invoice.dunning_started_at, steps_done=invoice.dunning_step,
        final_done=invoice.dunning_final_done,
        attempt_open=_attempt_open(session, invoice, at), hard_declined=invoice.hard_declined,
        last_attempt_at=invoice.last_attempt_at,
    )


def advance_dunning(session: Session, sub: Subscription, at: datetime, config: EngineConfig,
                    *, reason: str | None = None) -> list[DunningDecision]:
    """Apply every dunning move due now for ``sub``'s oldest unpaid invoice, as far as the
    subscription's status allows: paused waits, canceled and unpaid end dunning quietly."""
    invoice = _oldest_unpaid(session, sub.id)
    if invoice is None or invoice.dunning_plan is None:
        return []
    status = Status(sub.status)
    if not decide_lifecycle(status, SubEvent.DUNNING_STEP_DUE, config.lifecycle).dunning:
        if status in (Status.CANCELED, Status.UNPAID):
            invoice.dunning_final_done, invoice.next_attempt_at = True, None
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
            record_event(session, at, "dunning.last_try", invoice_id=invoice.id,
                         subscription_id=sub.id, customer_id=sub.customer_id)
            break
        invoice.last_escalation_at = at
        if decision.email is not None and decision.step_index is not None:
            invoice.dunning_step = decision.step_index + 1
            _send_notice(session, sub, invoice, plan, decision, at, config, reason)
        elif decision.final_action is not None:
            invoice.dunning_final_done = True
            _final_action(session, sub, decision.final_action, at, config)
            break
    return taken


_DECLINED = {"en": "the payment was declined", "fr": "le paiement a été refusé"}


def _send_notice(session: Session, sub: Subscription, invoice: Invoice, plan: DunningPlan,
                 decision: DunningDecision, at: datetime, config: EngineConfig,
                 reason: str | None) -> None:
    assert decision.email is not None and invoice.dunning_started_at is not None
    customer = session.get(Customer, sub.customer_id)
    assert customer is not None
    final_at = invoice.dunning_started_at + plan.final_after
    f = formatter(customer, invoice.currency)
    context = {
        "invoice_number": invoice.number,
        "amount": f.money(invoice.total - invoice.amount_paid),
        # The gateway's own reason is shown as it gave it; only our fallback is translated.
        "reason": reason or _last_reason(session, invoice) or _DECLINED.get(
            customer.locale, _DECLINED["en"]),
        "next_retry": f.day(invoice.next_attempt_at) or None,
        "update_card_url": update_card_url(config, customer.id, at),
        "pay_url": pay_now_url(config, invoice.id, at),
        "due_date": f.day(invoice.due_at),
        "final_action": plan.final_action.value,
        "final_date": f.day(final_at),
    }
    queue(session, config, customer, decision.email.value, at=at, context=context,
          key=f"dunning:{invoice.id}:{decision.step_index}", invoice_id=invoice.id, strict=True)
    record_event(session, at, "dunning.email_queued", customer_id=customer.id,
                 subscription_id=sub.id, invoice_id=invoice.id, email=decision.email.value,
                 step=decision.step_index)


def _last_reason(session: Session, invoice: Invoice) -> str | None:
    # The schedule's own decline: a pay-now's "abandoned" or hosted-page reason is not why the
    # card on file failed.
    return session.scalar(select(PaymentAttempt.failure_reason).where(
        PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.source != "pay_now")
        .order_by(PaymentAttempt.attempt_no.desc()).limit(1))


def _final_action(session: Session, sub: Subscription, action: FinalAction,
                  at: datetime, config: EngineConfig) -> None:
    """Stop retrying and apply the policy's last word to the subscription, through the table."""
    apply_event(session, sub, _FINAL_EVENTS[action], at, config.lifecycle, config=config,
                reason="dunning_exhausted")
    record_event(session, at, "dunning.final_action", subscription_id=sub.id,
                 customer_id=sub.customer_id, action=action.value)


@dataclass
class DunningSummary:
    subscriptions: int = 0
    moves: int = 0
    failed: list[ItemError] = field(default_factory=list)


KIND = "dunning.subscription"


def _in_dunning(at: datetime, after_id: int) -> list[ColumnElement[bool]]:
    invoices = select(Invoice.subscription_id).where(
        Invoice.status == InvoiceStatus.OPEN, Invoice.dunning_started_at.is_not(None),
        Invoice.dunning_final_done.is_(False))
    return [Subscription.id.in_(invoices), Subscription.id > after_id,
            not_backed_off(KIND, Subscription.id, at)]


def run_dunning(deps: Deps, *, at: datetime | None = None) -> DunningSummary:
    """One dunning tick over every subscription with an invoice in dunning.

    A batch of subscriptions shares one transaction; if anything in it raises, the batch is
    redone one subscription at a time, so only the subscription at fault is skipped (and backed
    off) while every other one is dunned.
    """
    at = at or deps.clock.now()
    summary, last_id = DunningSummary(), 0
    while True:
        claimed: list[int] = []
        try:
            with UnitOfWork(deps.store) as uow:
                subs = claim_rows(uow.session, Subscription, _in_dunning(at, last_id),
                                  [Subscription.id], deps.config.batch_size)
                claimed = [s.id for s in subs]
                moves = sum(len(advance_dunning(uow.session, s, at, deps.config)) for s in subs)
                clear_failures(uow.session, KIND, claimed, at)
                uow.commit()
            summary.moves += moves
        except Exception:
            if not claimed:
                raise  # nothing could be claimed: the tick itself cannot run
            log.exception("dunning batch failed; redoing it one subscription at a time")
            done, failed = one_by_one(deps, "dunning", KIND, claimed, at,
                                      lambda session, sub_id: _dunn_one(session, sub_id, at,
                                                                        deps.config))
            summary.moves += sum(done)
            summary.failed += failed
        summary.subscriptions += len(claimed)
        if len(claimed) < deps.config.batch_size:
            return summary
        last_id = claimed[-1]


def _dunn_one(session: Session, sub_id: int, at: datetime, config: EngineConfig) -> int:
    sub = lock_one(session, Subscription, sub_id)
    return 0 if sub is None else len(advance_dunning(session, sub, at, config))
