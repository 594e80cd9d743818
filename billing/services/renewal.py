"""Renewal: at each period boundary, issue that period's invoice exactly once, in order.

The subscription row is the cursor (``next_period_index``, ``next_renewal_at``); advancing it and
issuing the invoice happen in one transaction, and the schema allows one invoice per subscription
and period, so a repeated or concurrent tick can never bill a period twice. After downtime every
missed period is issued once, oldest first. Plan switches (a downgrade waiting for the period
end, or an ``at_renewal`` catalog migration) and cancel-at-period-end happen at the boundary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.domain.calendar import BillingCalendar, Interval, IntervalUnit, local_date
from billing.domain.invoices import InvoiceKind
from billing.domain.plans import MigrationPolicy
from billing.domain.subscriptions import BILLABLE, Event
from billing.services.claims import claim_rows, load_by_id
from billing.services.events import record_event
from billing.services.invoicing import LineDraft, draft_invoice, finish_invoices
from billing.services.isolation import (
    ItemError,
    clear_failures,
    lock_one,
    not_backed_off,
    one_by_one,
)
from billing.services.lifecycle import apply_event
from billing.services.ports import Deps, EngineConfig
from billing.store.models import Customer, Invoice, Plan, PlanVersion, Subscription
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)


def calendar_of(sub: Subscription, version: PlanVersion) -> BillingCalendar:
    interval = Interval(IntervalUnit(version.interval_unit), version.interval_count)
    return BillingCalendar(sub.anchor_date, interval, sub.timezone)


def _target_version(session: Session, sub: Subscription) -> PlanVersion | None:
    """The version the subscription moves to at this boundary, if any."""
    if sub.pending_plan_version_id is not None:
        return session.get(PlanVersion, sub.pending_plan_version_id)
    plan = session.get(Plan, sub.plan_id)
    current = session.get(PlanVersion, sub.plan_version_id)
    if plan is None or current is None or plan.migration != MigrationPolicy.AT_RENEWAL:
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
        Invoice.subscription_id.in_([s.id for s in subs]), Invoice.kind == InvoiceKind.RENEWAL,
        Invoice.period_start >= min(starts)))
    return {(sub_id, start) for sub_id, start in rows if sub_id is not None}


def _renew_one(session: Session, sub: Subscription, at: datetime,
               issued: Issued, config: EngineConfig | None = None) -> Invoice | None:
    boundary = sub.next_renewal_at
    assert boundary is not None
    if sub.cancel_at_period_end:
        apply_event(session, sub, Event.SCHEDULED_CANCEL_DUE, boundary, config=config,
                    reason="cancel_at_period_end")
        return None
    _switch_version(session, sub, boundary)
    version = session.get(PlanVersion, sub.plan_version_id)
    plan = session.get(Plan, sub.plan_id)
    customer = session.get(Customer, sub.customer_id)
    assert version is not None and plan is not None and customer is not None
    period = calendar_of(sub, version).period(sub.next_period_index)
    decision = apply_event(session, sub, Event.RENEWAL_DUE, period.start)
    lines = [LineDraft("subscription", f"{plan.name} {period.start_date} to {period.end_date}",
                       version.price, sub.quantity, period.start, period.end)]
    if sub.current_period_start is None and plan.setup_fee:
        lines.append(LineDraft("setup_fee", f"{plan.name} setup fee", plan.setup_fee))
    invoice = None
    if decision.issue_invoice and (sub.id, period.start) not in issued:
        invoice = draft_invoice(session, at=at, customer=customer, subscription=sub,
                                kind=InvoiceKind.RENEWAL, period_start=period.start,
                                period_end=period.end, currency=version.currency, lines=lines,
                                period_index=period.index)
    sub.next_period_index = period.index + 1
    sub.current_period_start, sub.current_period_end = period.start, period.end
    sub.next_renewal_at, sub.updated_at = period.end, at
    return invoice


def renew_subscription(session: Session, sub: Subscription, at: datetime, *,
                       limit: int | None = None,
                       config: EngineConfig | None = None) -> list[Invoice]:
    """Issue every period of ``sub`` that has started by ``at`` and is not yet invoiced (at most
    ``limit`` of them: the rest are issued by the next passes)."""
    drafts = _draft_renewals(session, sub, at, _issued_renewals(session, [sub]), limit, config)
    finish_invoices(session, drafts, at)
    return drafts


def _due(sub: Subscription, at: datetime) -> bool:
    return sub.status in BILLABLE and sub.next_renewal_at is not None and (
        sub.next_renewal_at <= at)


def _draft_renewals(session: Session, sub: Subscription, at: datetime, issued: Issued,
                    limit: int | None, config: EngineConfig | None = None) -> list[Invoice]:
    drafts: list[Invoice] = []
    periods = 0
    while _due(sub, at) and (limit is None or periods < limit):
        invoice = _renew_one(session, sub, at, issued, config)
        periods += 1
        if invoice is not None:
            drafts.append(invoice)
    if limit is not None and _due(sub, at):
        log.info("subscription %s is still behind after %d periods; the next pass goes on",
                 sub.id, limit, extra={"subscription_id": sub.id})
    return drafts


@dataclass
class RenewSummary:
    subscriptions: int = 0
    invoices: int = 0
    behind: int = 0
    """Subscriptions with more missed periods than one pass issues (``max_catch_up``)."""
    failed: list[ItemError] = field(default_factory=list)


def _preload(session: Session, subs: list[Subscription]) -> None:
    """Load the plans, versions and customers a batch of renewals reads, once."""
    if subs:
        load_by_id(session, Plan, {s.plan_id for s in subs})
        load_by_id(session, PlanVersion, {s.plan_version_id for s in subs} | {
            s.pending_plan_version_id for s in subs if s.pending_plan_version_id})
        load_by_id(session, Customer, {s.customer_id for s in subs})


KIND = "renew.subscription"


def renew_due(deps: Deps, *, at: datetime | None = None) -> RenewSummary:
    """One renewal tick: claim due subscriptions in batches and issue their invoices.

    A batch shares one transaction; if it raises, it is redone one subscription at a time so
    only the subscription at fault is skipped and backed off. Each subscription issues at most
    ``max_catch_up`` periods per pass; one still behind is left out of this pass's later claims.
    """
    at = at or deps.clock.now()
    summary, skip = RenewSummary(), set[int]()
    limit = deps.config.max_catch_up
    while True:
        claimed: list[int] = []
        try:
            with UnitOfWork(deps.store) as uow:
                subs = _claim(uow.session, deps, at, skip)
                claimed = [s.id for s in subs]
                _preload(uow.session, subs)
                issued, drafts = _issued_renewals(uow.session, subs), list[Invoice]()
                for sub in subs:
                    drafts += _draft_renewals(uow.session, sub, at, issued, limit, deps.config)
                behind = {s.id for s in subs if _due(s, at)}
                finish_invoices(uow.session, drafts, at)
                clear_failures(uow.session, KIND, claimed, at)
                uow.commit()
            summary.invoices += len(drafts)
        except Exception:
            if not claimed:
                raise  # nothing could be claimed: the tick itself cannot run
            log.exception("renewal batch failed; redoing it one subscription at a time")
            behind = set()
            redo = partial(_renew_each, at=at, limit=limit, behind=behind, config=deps.config)
            done, failed = one_by_one(deps, "renew", KIND, claimed, at, redo)
            summary.invoices += sum(done)
            summary.failed += failed
            skip.update(f.item_id for f in failed)
        summary.subscriptions += len(claimed)
        summary.behind += len(behind)
        skip |= behind
        if len(claimed) < deps.config.batch_size:
            return summary


def _claim(session: Session, deps: Deps, at: datetime, skip: set[int]) -> list[Subscription]:
    where = [Subscription.status.in_(BILLABLE), Subscription.next_renewal_at <= at,
             not_backed_off(KIND, Subscription.id, at)]
    if skip:
        where.append(Subscription.id.not_in(skip))
    subs: list[Subscription] = claim_rows(session, Subscription, where,
                                          [Subscription.next_renewal_at, Subscription.id],
                                          deps.config.batch_size)
    return subs


def _renew_each(session: Session, sub_id: int, *, at: datetime, limit: int,
                behind: set[int], config: EngineConfig | None = None) -> int:
    sub = lock_one(session, Subscription, sub_id)
    if sub is None:
        return 0
    issued = renew_subscription(session, sub, at, limit=limit, config=config)
    if _due(sub, at):
        behind.add(sub.id)
    return len(issued)
