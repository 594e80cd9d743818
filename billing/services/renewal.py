"""Renewal: at each period boundary, issue that period's invoice exactly once, in order.

The subscription row is the cursor (``next_period_index``, ``next_renewal_at``); advancing it and
issuing the invoice happen in one transaction, and the schema allows one invoice per subscription
and period, so a repeated or concurrent tick can never bill a period twice. After downtime every
missed period is issued once, oldest first. Plan switches (a downgrade waiting for the period
end, or an ``at_renewal`` catalog migration) and cancel-at-period-end happen at the boundary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.domain.calendar import BillingCalendar, Interval, IntervalUnit, local_date
from billing.domain.subscriptions import BILLABLE, Event
from billing.services.claims import claim_rows, load_by_id
from billing.services.events import record_event
from billing.services.invoicing import LineDraft, draft_invoice, finish_invoices
from billing.services.lifecycle import apply_transition
from billing.services.ports import Deps
from billing.store.models import Customer, Invoice, Plan, PlanVersion, Subscription
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)
_BILLABLE = [s.value for s in BILLABLE]


def calendar_of(sub: Subscription, version: PlanVersion) -> BillingCalendar:
    interval = Interval(IntervalUnit(version.interval_unit), version.interval_count)
    return BillingCalendar(sub.anchor_date, interval, sub.timezone)


def _target_version(session: Session, sub: Subscription) -> PlanVersion | None:
    """The version the subscription moves to at this boundary, if any."""
    if sub.pending_plan_version_id is not None:
        return session.get(PlanVersion, sub.pending_plan_version_id)
    plan = session.get(Plan, sub.plan_id)
    current = session.get(PlanVersion, sub.plan_version_id)
    if plan is None or current is None or plan.migration != "at_renewal":
        return None
    if current.version == plan.current_version:
        return None
    return session.scalar(select(PlanVersion).where(
        PlanVersion.plan_id == plan.id, PlanVersion.version == plan.current_version))


def _switch_version(session: Session, sub: Subscription, boundary: datetime) -> None:
    if sub.pending_quantity is not None:
        record_event(session, boundary, "subscription.quantity_changed", subscription_id=sub.id,
                     customer_id=sub.customer_id, before=sub.quantity, after=sub.pending_quantity)
        sub.quantity, sub.pending_quantity = sub.pending_quantity, None
    target = _target_version(session, sub)
    current = session.get(PlanVersion, sub.plan_version_id)
    if target is None or current is None or target.id == current.id:
        sub.pending_plan_version_id = None
        return
    reanchor = (target.interval_unit, target.interval_count) != (
        current.interval_unit, current.interval_count)
    record_event(session, boundary, "subscription.plan_switched", subscription_id=sub.id,
                 customer_id=sub.customer_id, from_version=current.id, to_version=target.id,
                 reanchored=reanchor or None)
    sub.plan_id, sub.plan_version_id, sub.pending_plan_version_id = target.plan_id, target.id, None
    if reanchor:
        sub.anchor_date, sub.next_period_index = local_date(boundary, sub.timezone), 0


Issued = set[tuple[int, datetime]]
"""(subscription id, period start) of the renewal invoices a batch's subscriptions already have."""


def _issued_renewals(session: Session, subs: list[Subscription]) -> Issued:
    """One query for the whole batch instead of an "already issued?" query per period."""
    starts = [s.next_renewal_at for s in subs if s.next_renewal_at is not None]
    if not starts:
        return set()
    rows = session.execute(select(Invoice.subscription_id, Invoice.period_start).where(
        Invoice.subscription_id.in_([s.id for s in subs]), Invoice.kind == "renewal",
        Invoice.period_start >= min(starts)))
    return {(sub_id, start) for sub_id, start in rows if sub_id is not None}


def _renew_one(session: Session, sub: Subscription, at: datetime,
               issued: Issued) -> Invoice | None:
    boundary = sub.next_renewal_at
    assert boundary is not None
    if sub.cancel_at_period_end:
        apply_transition(session, sub, Event.CANCEL, boundary, reason="cancel_at_period_end")
        sub.canceled_at, sub.next_renewal_at = boundary, None
        return None
    _switch_version(session, sub, boundary)
    version = session.get(PlanVersion, sub.plan_version_id)
    plan = session.get(Plan, sub.plan_id)
    customer = session.get(Customer, sub.customer_id)
    assert version is not None and plan is not None and customer is not None
    period = calendar_of(sub, version).period(sub.next_period_index)
    lines = [LineDraft("subscription", f"{plan.name} {period.start_date} to {period.end_date}",
                       version.price, sub.quantity, period.start, period.end)]
    if sub.current_period_start is None and plan.setup_fee:
        lines.append(LineDraft("setup_fee", f"{plan.name} setup fee", plan.setup_fee))
    invoice = None
    if (sub.id, period.start) not in issued:
        invoice = draft_invoice(session, at=at, customer=customer, subscription=sub,
                                kind="renewal", period_start=period.start,
                                period_end=period.end, currency=version.currency, lines=lines,
                                period_index=period.index)
    apply_transition(session, sub, Event.PERIOD_STARTED, period.start)
    sub.next_period_index = period.index + 1
    sub.current_period_start, sub.current_period_end = period.start, period.end
    sub.next_renewal_at, sub.updated_at = period.end, at
    return invoice


def renew_subscription(session: Session, sub: Subscription, at: datetime) -> list[Invoice]:
    """Issue every period of ``sub`` that has started by ``at`` and is not yet invoiced."""
    drafts = _draft_renewals(session, sub, at, _issued_renewals(session, [sub]))
    finish_invoices(session, drafts, at)
    return drafts


def _draft_renewals(session: Session, sub: Subscription, at: datetime,
                    issued: Issued) -> list[Invoice]:
    drafts: list[Invoice] = []
    while sub.status in _BILLABLE and sub.next_renewal_at is not None and (
        sub.next_renewal_at <= at
    ):
        invoice = _renew_one(session, sub, at, issued)
        if invoice is not None:
            drafts.append(invoice)
    return drafts


@dataclass
class RenewSummary:
    subscriptions: int = 0
    invoices: int = 0
    errors: int = 0


def _preload(session: Session, subs: list[Subscription]) -> None:
    """Load the plans, versions and customers a batch of renewals reads, once."""
    if subs:
        load_by_id(session, Plan, {s.plan_id for s in subs})
        load_by_id(session, PlanVersion, {s.plan_version_id for s in subs} | {
            s.pending_plan_version_id for s in subs if s.pending_plan_version_id})
        load_by_id(session, Customer, {s.customer_id for s in subs})


def renew_due(deps: Deps, *, at: datetime | None = None) -> RenewSummary:
    """One renewal tick: claim due subscriptions in batches and issue their invoices."""
    at = at or deps.clock.now()
    summary, skip = RenewSummary(), set[int]()
    while True:
        with UnitOfWork(deps.store) as uow:
            where = [Subscription.status.in_(_BILLABLE), Subscription.next_renewal_at <= at]
            if skip:
                where.append(Subscription.id.not_in(skip))
            subs = claim_rows(uow.session, Subscription, where,
                              [Subscription.next_renewal_at, Subscription.id],
                              deps.config.batch_size)
            _preload(uow.session, subs)
            ids = [s.id for s in subs]
            try:
                issued, drafts = _issued_renewals(uow.session, subs), list[Invoice]()
                for sub in subs:
                    drafts += _draft_renewals(uow.session, sub, at, issued)
                finish_invoices(uow.session, drafts, at)
                uow.commit()
                summary.invoices += len(drafts)
                summary.subscriptions += len(ids)
            except Exception:
                uow.rollback()
                log.exception("renewal batch failed; retrying its subscriptions one by one")
                _renew_each(deps, ids, at, summary, skip)
        if len(ids) < deps.config.batch_size:
            return summary


def _renew_each(deps: Deps, ids: list[int], at: datetime, summary: RenewSummary,
                skip: set[int]) -> None:
    for sub_id in ids:
        try:
            with UnitOfWork(deps.store) as uow:
                sub = uow.session.get(Subscription, sub_id)
                if sub is not None:
                    summary.invoices += len(renew_subscription(uow.session, sub, at))
                uow.commit()
                summary.subscriptions += 1
        except Exception as exc:
            log.exception("renewal of subscription %s failed", sub_id)
            summary.errors += 1
            skip.add(sub_id)
            with UnitOfWork(deps.store) as uow:
                record_event(uow.session, at, "alert.renewal_failed", subscription_id=sub_id,
                             error=type(exc).__name__)
                uow.commit()
