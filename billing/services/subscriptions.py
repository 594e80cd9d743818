"""Subscription use cases: create, cancel, reactivate, pause, resume, change plan or quantity.

Each is one unit of work ending in a commit (or, for ``preview``, a rollback). Status changes go
through ``billing.domain.subscriptions.transition``; amounts through ``billing.domain.proration``,
whose ``place_credit`` keeps a mid-period credit to money actually paid for the period.
Creating or resuming renews inline, so the first invoice exists as soon as the command returns;
a start in the past bills only the current period (``billing.domain.starts``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select

from billing.clock import Clock
from billing.domain.calendar import BillingCalendar, local_date, start_of_local_day
from billing.domain.money import Money
from billing.domain.plans import check_billable, check_quantity
from billing.domain.proration import CreditPlacement, prorate_change
from billing.domain.starts import FirstBilling, check_ahead, first_billing
from billing.domain.subscriptions import Event, LifecyclePolicy, Status
from billing.domain.timeutil import to_utc
from billing.errors import Conflict, InvalidInput, NotFound
from billing.services.credits import give_credit, placement_data, placement_view
from billing.services.customers import find_customer
from billing.services.emails import queue_plan_changed
from billing.services.events import record_event
from billing.services.invoicing import LineDraft, draft_invoice, finish_invoices
from billing.services.lifecycle import apply_event
from billing.services.ports import EngineConfig
from billing.services.renewal import calendar_of, renew_subscription
from billing.services.taxes import rates_for
from billing.store.models import Card, Customer, Invoice, Plan, PlanVersion, Subscription
from billing.store.uow import UnitOfWork

When = Literal["auto", "now", "period_end"]


def find_plan(uow: UnitOfWork, code: str) -> tuple[Plan, PlanVersion]:
    """A plan that can be sold, with the version new subscriptions get (its current one)."""
    plan = uow.session.scalar(select(Plan).where(Plan.code == code))
    if plan is None:
        raise NotFound(f"no plan {code!r}; run `billing plans apply` after adding it")
    if plan.archived:
        raise Conflict(f"plan {code!r} is archived and can't be sold")
    version = next(v for v in plan.versions if v.version == plan.current_version)
    return plan, version


def find_active_card(uow: UnitOfWork, customer: Customer, ref: str | None) -> Card | None:
    """The customer's active card ``ref`` (an error if it isn't one), or their newest one."""
    query = select(Card).where(Card.customer_id == customer.id, Card.status == "active")
    if ref is not None:
        card = uow.session.scalar(query.where(Card.gateway_card_id == ref))
        if card is None:
            raise NotFound(f"customer {customer.external_id} has no active card {ref!r}")
        return card
    return uow.session.scalar(query.order_by(Card.id.desc()).limit(1))


def _setup_fee(plan: Plan, currency: str) -> Money | None:
    return Money(plan.setup_fee, currency) if plan.setup_fee else None


def get_subscription(uow: UnitOfWork, sub_id: int) -> Subscription:
    sub = uow.session.get(Subscription, sub_id, with_for_update=True)
    if sub is None:
        raise NotFound(f"no subscription {sub_id}")
    return sub


def create_subscription(
    uow: UnitOfWork, clock: Clock, *, customer: str, plan: str, card: str | None = None,
    start: datetime | None = None, trial_days: int | None = None, quantity: int = 1,
    backfill: bool = False,
) -> dict[str, Any]:
    """Subscribe a customer and bill the period that contains now, unless a trial comes first.

    A ``start`` in the past keeps its local date as the anchor (the calendar is the customer's),
    but the periods before the current one are not billed: they are skipped and the view says
    so. ``backfill`` bills them too, oldest first, within ``MAX_BACKFILL``
    (``billing.domain.starts``). A trial always runs from the start.
    """
    check_quantity(quantity)
    if trial_days is not None and not 0 <= trial_days <= 730:
        raise InvalidInput("trial days must be between 0 and 730")
    now = clock.now()
    session = uow.session
    cust = find_customer(uow, customer)
    plan_row, version = find_plan(uow, plan)
    check_billable(Money(version.price, version.currency), quantity,
                   _setup_fee(plan_row, version.currency), rates_for(session, cust.province))
    card_row = find_active_card(uow, cust, card)
    begin = to_utc(start) if start else now
    check_ahead(local_date(begin, cust.timezone), now, cust.timezone, "the start")
    trial = plan_row.trial_days if trial_days is None else trial_days
    anchor = local_date(begin, cust.timezone) + timedelta(days=trial)
    sub = Subscription(
        customer_id=cust.id, plan_id=plan_row.id, plan_version_id=version.id,
        card_id=card_row.id if card_row else None,
        status=(Status.TRIALING if trial else Status.ACTIVE).value, quantity=quantity,
        timezone=cust.timezone, anchor_date=anchor, started_at=begin,
        trial_end=start_of_local_day(anchor, cust.timezone) if trial else None,
        cancel_at_period_end=False, created_at=now, updated_at=now,
    )
    calendar = calendar_of(sub, version)
    billing = first_billing(calendar, now, backfill=backfill)
    sub.next_period_index = billing.first
    sub.next_renewal_at = calendar.boundary(billing.first)
    session.add(sub)
    session.flush()
    record_event(session, now, "subscription.created", subscription_id=sub.id,
                 customer_id=cust.id, plan=plan_row.code, version=version.version,
                 status=sub.status, anchor=anchor.isoformat(), quantity=quantity,
                 started_at=begin.isoformat(), first_period=billing.first,
                 skipped_periods=billing.skipped or None,
                 backfilled_periods=billing.backfilled if backfill else None)
    issued = renew_subscription(session, sub, now)
    view = {**describe(uow, sub), **_first_billing_view(calendar, billing, issued)}
    uow.commit()
    return view


def _first_billing_view(calendar: BillingCalendar, billing: FirstBilling,
                        issued: list[Invoice]) -> dict[str, Any]:
    """Which periods creating the subscription billed and which it skipped, in words."""
    periods = [i.period_index for i in issued if i.period_index is not None]
    billed = None
    if periods:
        first, last = min(periods), max(periods)
        span = f"{calendar.boundary_date(first)} to {calendar.boundary_date(last + 1)}"
        billed = f"period {first} ({span})" if first == last else (
            f"periods {first} to {last} ({span}), oldest first")
    skipped = None
    if billing.skipped:
        count = billing.skipped
        skipped = (f"{count} earlier period{'s' if count > 1 else ''} "
                   f"({calendar.anchor} to {calendar.boundary_date(billing.first)}); "
                   "--backfill bills them")
    return {"invoices_issued": len(issued), "billed": billed, "not_billed": skipped}


def cancel(uow: UnitOfWork, clock: Clock, sub_id: int, *, at_period_end: bool,
           policy: LifecyclePolicy | None = None,
           config: EngineConfig | None = None) -> dict[str, Any]:
    """Cancel now, or at the end of the current period (reversible until then). Canceling now
    stops collecting open invoices at once (``policy.on_cancel``: write off, the default, or
    keep them open without charging)."""
    now, sub = clock.now(), get_subscription(uow, sub_id)
    if at_period_end:
        apply_event(uow.session, sub, Event.CANCEL_AT_PERIOD_END, now, policy)
        sub.cancel_at_period_end, sub.updated_at = True, now
        record_event(uow.session, now, "subscription.cancel_scheduled", subscription_id=sub.id,
                     customer_id=sub.customer_id, effective=_iso(sub.next_renewal_at))
    else:
        apply_event(uow.session, sub, Event.CANCEL, now, policy, config=config,
                    reason="requested")
    view = describe(uow, sub)
    uow.commit()
    return view


def reactivate(uow: UnitOfWork, clock: Clock, sub_id: int) -> dict[str, Any]:
    """Undo a cancel-at-period-end before the period ends."""
    now, sub = clock.now(), get_subscription(uow, sub_id)
    if not sub.cancel_at_period_end or sub.status == Status.CANCELED:
        raise Conflict(f"subscription {sub_id} has no pending cancellation to undo")
    sub.cancel_at_period_end, sub.updated_at = False, now
    record_event(uow.session, now, "subscription.reactivated", subscription_id=sub.id,
                 customer_id=sub.customer_id)
    view = describe(uow, sub)
    uow.commit()
    return view


def pause(uow: UnitOfWork, clock: Clock, sub_id: int,
          policy: LifecyclePolicy | None = None) -> dict[str, Any]:
    """Stop issuing invoices until resumed; the period already paid keeps running, and open
    invoices stop being charged (``policy.on_pause``: kept open, the default, or written off)."""
    now, sub = clock.now(), get_subscription(uow, sub_id)
    apply_event(uow.session, sub, Event.PAUSE, now, policy)
    sub.paused_at = now
    view = describe(uow, sub)
    uow.commit()
    return view


def resume(uow: UnitOfWork, clock: Clock, sub_id: int,
           policy: LifecyclePolicy | None = None) -> dict[str, Any]:
    """Resume billing (see ``restart_billing`` for how the anchor behaves) and charge the
    invoices the pause kept open."""
    now, sub = clock.now(), get_subscription(uow, sub_id)
    apply_event(uow.session, sub, Event.RESUME, now, policy)
    sub.paused_at = None
    renew_subscription(uow.session, sub, now)
    view = describe(uow, sub)
    uow.commit()
    return view


@dataclass(frozen=True)
class ChangePreview:
    subscription: int
    from_plan: str
    to_plan: str
    from_quantity: int
    to_quantity: int
    applies: str
    old_price: str
    new_price: str
    remaining_seconds: int | None = None
    period_seconds: int | None = None
    charge_now: str | None = None
    credit_now: str | None = None
    invoice: str | None = None
    """The proration invoice a charge now is billed on."""
    reduced: str | None = None
    """Where a credit now goes when the period is unpaid: ``INV-0000042 by 12.00 CAD``."""
    credit_to_balance: str | None = None
    """The part of a credit now that goes to the customer's balance (the period was paid)."""
    credit_forfeited: str | None = None
    """The part of a credit now that goes nowhere, and why (the period was never paid)."""


def change_plan(
    uow: UnitOfWork, clock: Clock, sub_id: int, *, plan: str | None = None,
    quantity: int | None = None, when: When = "auto", preview: bool = False,
    config: EngineConfig | None = None,
) -> ChangePreview:
    """Upgrade now with an exact proration, or downgrade at period end.

    ``preview`` computes the same result and stores nothing.
    """
    now, sub = clock.now(), get_subscription(uow, sub_id)
    if sub.status not in (Status.ACTIVE.value, Status.PAST_DUE.value, Status.TRIALING.value):
        raise Conflict(f"cannot change the plan of a {sub.status} subscription")
    old_version = uow.session.get(PlanVersion, sub.plan_version_id)
    old_plan = uow.session.get(Plan, sub.plan_id)
    assert old_version is not None and old_plan is not None
    new_plan, new_version = find_plan(uow, plan) if plan else (old_plan, old_version)
    qty = check_quantity(quantity if quantity is not None else sub.quantity)
    # The setup fee is still ahead only while no period has been billed.
    customer = uow.session.get(Customer, sub.customer_id)
    assert customer is not None
    check_billable(Money(new_version.price, new_version.currency), qty,
                   _setup_fee(new_plan, new_version.currency)
                   if sub.current_period_start is None else None,
                   rates_for(uow.session, customer.province))
    old_total = Money(old_version.price * sub.quantity, old_version.currency)
    new_total = Money(new_version.price * qty, new_version.currency)
    same_interval = (old_version.interval_unit, old_version.interval_count) == (
        new_version.interval_unit, new_version.interval_count)
    # An imported subscription has a current period (paid elsewhere) but no period billed here
    # (``next_period_index`` 0) until its first renewal: nothing to prorate against yet.
    in_period = (sub.current_period_start is not None and sub.next_period_index > 0
                 and sub.status != Status.TRIALING.value)
    immediate = {"now": True, "period_end": False}.get(when, new_total > old_total)
    if immediate and not (same_interval and in_period):
        raise Conflict("this change can only take effect at the period end "
                       "(different interval, or no period billed yet)")
    result = ChangePreview(sub.id, f"{old_plan.code} v{old_version.version}",
                           f"{new_plan.code} v{new_version.version}", sub.quantity, qty,
                           "now" if immediate else "period_end", old_total.format(),
                           new_total.format())
    old_qty = sub.quantity
    if immediate:
        result = _prorate_now(uow, sub, old_version, new_version, qty, old_total, new_total,
                              now, result)
    else:
        sub.pending_plan_version_id = new_version.id if new_version.id != old_version.id else None
        sub.pending_quantity = qty if qty != sub.quantity else None
        record_event(uow.session, now, "subscription.change_scheduled", subscription_id=sub.id,
                     customer_id=sub.customer_id, **asdict(result))
    if preview:
        uow.rollback()
        return result
    if config is not None and (new_version.id, qty) != (old_version.id, old_qty):
        queue_plan_changed(uow.session, config, sub, old=old_version, new=new_version,
                           old_quantity=old_qty, quantity=qty, immediate=immediate, at=now)
    uow.commit()
    return result


def _prorate_now(uow: UnitOfWork, sub: Subscription, old: PlanVersion, new: PlanVersion,
                 qty: int, old_total: Money, new_total: Money, now: datetime,
                 result: ChangePreview) -> ChangePreview:
    session = uow.session
    period = calendar_of(sub, old).period(sub.next_period_index - 1)
    change = prorate_change(period, now, old_total, new_total)
    customer = session.get(Customer, sub.customer_id)
    assert customer is not None
    net, days = change.net, timedelta(seconds=change.remaining_seconds)
    what = f"Change to {result.to_plan} x{qty} for the remaining {days} of the period"
    invoice: Invoice | None = None
    placed: CreditPlacement | None = None
    if net.amount > 0:
        invoice = draft_invoice(session, at=now, customer=customer, subscription=sub,
                                kind="proration", period_start=now, period_end=period.end,
                                currency=new.currency, lines=[LineDraft("proration", what,
                                                                        net.amount)])
        finish_invoices(session, [invoice], now)
    elif net.amount < 0:
        placed = give_credit(session, sub, customer, period, -net.amount, now, what)
    record_event(session, now, "subscription.plan_changed", subscription_id=sub.id,
                 customer_id=sub.customer_id, from_version=old.id, to_version=new.id,
                 quantity=qty, net=net.amount, invoice=invoice.number if invoice else None,
                 **(placement_data(placed) if placed else {}))
    sub.plan_id, sub.plan_version_id, sub.quantity = new.plan_id, new.id, qty
    sub.pending_plan_version_id = sub.pending_quantity = None
    sub.updated_at = now
    return ChangePreview(
        **{**asdict(result), "remaining_seconds": change.remaining_seconds,
           "period_seconds": change.period_seconds,
           "charge_now": net.format() if net.amount > 0 else None,
           "credit_now": (-net).format() if net.amount < 0 else None,
           "invoice": invoice.number if invoice else None,
           **(placement_view(placed, net.currency) if placed else {})})


def describe(uow: UnitOfWork, sub: Subscription) -> dict[str, Any]:
    """A subscription as people and scripts see it."""
    session = uow.session
    plan = session.get(Plan, sub.plan_id)
    version = session.get(PlanVersion, sub.plan_version_id)
    customer = session.get(Customer, sub.customer_id)
    card = session.get(Card, sub.card_id) if sub.card_id else None
    assert plan is not None and version is not None and customer is not None
    pending = session.get(PlanVersion, sub.pending_plan_version_id) \
        if sub.pending_plan_version_id else None
    return {
        "id": sub.id, "customer": customer.external_id, "status": sub.status,
        "plan": plan.code, "version": version.version, "quantity": sub.quantity,
        "price": Money(version.price * sub.quantity, version.currency).format(),
        "interval": f"{version.interval_count} {version.interval_unit}",
        "anchor": sub.anchor_date.isoformat(), "timezone": sub.timezone,
        "trial_end": _iso(sub.trial_end),
        "current_period": [_iso(sub.current_period_start), _iso(sub.current_period_end)],
        "next_renewal": _iso(sub.next_renewal_at),
        "card": card.masked_number or card.gateway_card_id if card else None,
        "cancel_at_period_end": sub.cancel_at_period_end, "canceled_at": _iso(sub.canceled_at),
        "pending_change": (f"v{pending.version} of plan {pending.plan_id}" if pending else None)
        or (f"quantity {sub.pending_quantity}" if sub.pending_quantity else None),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def list_subscriptions(uow: UnitOfWork, *, customer: str | None = None,
                       status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query = select(Subscription).order_by(Subscription.id).limit(limit)
    if customer is not None:
        query = query.where(Subscription.customer_id == find_customer(uow, customer).id)
    if status is not None:
        query = query.where(Subscription.status == status)
    return [describe(uow, s) for s in uow.session.scalars(query)]
