"""Use cases as the merchant JSON API calls them: ``(deps, ...)``, each owning its unit of work.

The rules stay where the CLI finds them (``customers``, ``subscriptions``, ``documents``,
``refunds``, ``cards``); this module only opens the transaction around them, pages through
lists by id (the API's cursors) and gives amounts as integer minor units with their currency,
which the CLI's views print for people. ``billing.api`` imports this and never the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import select

from billing import reports
from billing.domain.cards import CardStatus
from billing.errors import NotFound
from billing.reports import Report, report_range
from billing.reports.period import previous_month
from billing.services import customers, documents, paynow
from billing.services import subscriptions as subs
from billing.services.cards import CardView
from billing.services.events import record_event
from billing.services.ports import Deps
from billing.store.models import MAX_ROW_ID, Card, Customer, Event, Plan, PlanVersion, Subscription
from billing.store.uow import UnitOfWork

T = TypeVar("T")


def _run(deps: Deps, action: Callable[[UnitOfWork], T]) -> T:
    """One unit of work around ``action``; it commits what it means to keep."""
    with UnitOfWork(deps.store) as uow:
        return action(uow)


# -- customers ----------------------------------------------------------------------------------

def create_customer(deps: Deps, **fields: str | None) -> customers.CustomerView:
    return _run(deps, lambda uow: customers.add_customer(uow, deps.clock, **fields))


def get_customer(deps: Deps, ref: str) -> customers.CustomerView:
    return _run(deps, lambda uow: customers.CustomerView.of(customers.find_customer(uow, ref)))


def page_customers(deps: Deps, *, after: int | None, limit: int) -> list[customers.CustomerView]:
    """Oldest first, those with an id above ``after``."""
    def read(uow: UnitOfWork) -> list[customers.CustomerView]:
        query = select(Customer).order_by(Customer.id).limit(limit)
        if after is not None:
            query = query.where(Customer.id > after)
        return [customers.CustomerView.of(r) for r in uow.session.scalars(query)]
    return _run(deps, read)


def remove_card(deps: Deps, customer_ref: str, card_id: str) -> CardView:
    """Stop using a saved card: it is marked removed and live subscriptions that charged it
    move to the customer's newest other active card (or to none: their invoices then wait for
    a new card, as after a hard decline)."""
    now = deps.clock.now()

    def act(uow: UnitOfWork) -> CardView:
        owner = customers.find_customer(uow, customer_ref)
        card = uow.session.scalar(select(Card).where(
            Card.gateway_card_id == card_id, Card.customer_id == owner.id))
        if card is None or card.status == CardStatus.REMOVED:
            raise NotFound(f"customer {customer_ref!r} has no card {card_id!r}")
        card.status = CardStatus.REMOVED
        other = uow.session.scalar(select(Card).where(
            Card.customer_id == owner.id, Card.status == CardStatus.ACTIVE, Card.id != card.id)
            .order_by(Card.id.desc()).limit(1))
        for sub in uow.session.scalars(select(Subscription).where(
                Subscription.card_id == card.id)):
            sub.card_id = other.id if other else None
        record_event(uow.session, now, "card.removed", customer_id=owner.id,
                     card_id=card.gateway_card_id)
        view = CardView(card.gateway_card_id, owner.external_id, card.status,
                        card.masked_number, card.card_type, card.expiry, card.holder)
        uow.commit()
        return view
    return _run(deps, act)


# -- subscriptions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubscriptionView:
    """``subscriptions.describe`` with the price as minor units and its currency."""

    fields: dict[str, Any]
    amount: int
    currency: str


def _sub_view(uow: UnitOfWork, sub: Subscription) -> SubscriptionView:
    version = uow.session.get(PlanVersion, sub.plan_version_id)
    assert version is not None
    return SubscriptionView(subs.describe(uow, sub), version.price * sub.quantity,
                            version.currency)


def _sub(uow: UnitOfWork, sub_id: int) -> Subscription:
    row = uow.session.get(Subscription, sub_id) if 0 < sub_id <= MAX_ROW_ID else None
    if row is None:
        raise NotFound(f"no subscription {sub_id}")
    return row


def get_subscription(deps: Deps, sub_id: int) -> SubscriptionView:
    return _run(deps, lambda uow: _sub_view(uow, _sub(uow, sub_id)))


def page_subscriptions(deps: Deps, *, after: int | None, limit: int, customer: str | None,
                       status: str | None) -> list[SubscriptionView]:
    def read(uow: UnitOfWork) -> list[SubscriptionView]:
        query = select(Subscription).order_by(Subscription.id).limit(limit)
        if after is not None:
            query = query.where(Subscription.id > after)
        if customer is not None:
            query = query.where(Subscription.customer_id ==
                                customers.find_customer(uow, customer).id)
        if status is not None:
            query = query.where(Subscription.status == status)
        return [_sub_view(uow, s) for s in uow.session.scalars(query)]
    return _run(deps, read)


def act_on_subscription(deps: Deps, action: str, sub_id: int,
                        **kwargs: Any) -> tuple[dict[str, Any], SubscriptionView]:
    """Run one of ``create_subscription``, ``cancel``, ``pause``, ``resume``, ``reactivate``
    (the CLI's use cases) and return its own result beside the subscription as it is now."""
    use_cases: dict[str, Callable[..., dict[str, Any]]] = {
        "cancel": subs.cancel, "pause": subs.pause, "resume": subs.resume,
        "reactivate": subs.reactivate}
    if action == "create":
        result = _run(deps, lambda uow: subs.create_subscription(uow, deps.clock, **kwargs))
        sub_id = int(result["id"])
    else:
        _run(deps, lambda uow: _sub(uow, sub_id))
        result = _run(deps, lambda uow: use_cases[action](uow, deps.clock, sub_id, **kwargs))
    return result, get_subscription(deps, sub_id)


def change_plan(deps: Deps, sub_id: int, *, plan: str | None, quantity: int | None,
                when: subs.When, preview: bool) -> subs.ChangePreview:
    _run(deps, lambda uow: _sub(uow, sub_id))
    return _run(deps, lambda uow: subs.change_plan(uow, deps.clock, sub_id, plan=plan,
                                                   quantity=quantity, when=when,
                                                   preview=preview))


# -- invoices, credit notes, links --------------------------------------------------------------

def page_invoices(deps: Deps, *, before: int | None, limit: int, customer: str | None,
                  subscription: int | None, status: str | None, issued_from: date | None,
                  issued_to: date | None, timezone: str) -> list[documents.InvoiceSummary]:
    return _run(deps, lambda uow: documents.list_invoices(
        uow, customer=customer, subscription=subscription, status=status,
        issued_from=issued_from, issued_to=issued_to, timezone=timezone, limit=limit,
        before_id=before))


def invoice_document(deps: Deps, number: str) -> documents.InvoiceDocument:
    return _run(deps, lambda uow: documents.invoice_document(uow, number))


def page_credit_notes(deps: Deps, *, before: int | None, limit: int, customer: str | None,
                      invoice: str | None) -> list[documents.CreditNoteSummary]:
    return _run(deps, lambda uow: documents.list_credit_notes(
        uow, customer=customer, invoice=invoice, limit=limit, before_id=before))


def credit_note_document(deps: Deps, number: str) -> documents.CreditNoteDocument:
    return _run(deps, lambda uow: documents.credit_note_document(uow, number))


def pay_now_link(deps: Deps, number: str) -> tuple[str, str]:
    """The signed pay-now URL of an open invoice and the instant it stops working; the rule
    (a paid or void invoice has none: ``Conflict``) is ``paynow.pay_link``'s, as the CLI's."""
    now = deps.clock.now()
    url = _run(deps, lambda uow: paynow.pay_link(uow, deps.config, number, now))
    return url, (now + deps.config.pay_now_link_ttl).isoformat()


# -- events and plans ---------------------------------------------------------------------------

def page_events(deps: Deps, *, before: int | None, limit: int, type_prefix: str | None,
                customer: str | None, subscription: int | None) -> list[dict[str, Any]]:
    """Newest first."""
    def read(uow: UnitOfWork) -> list[dict[str, Any]]:
        query = select(Event).order_by(Event.id.desc()).limit(limit)
        if before is not None:
            query = query.where(Event.id < before)
        if type_prefix is not None:
            query = query.where(Event.type.startswith(type_prefix, autoescape=True))
        if customer is not None:
            query = query.where(Event.customer_id == customers.find_customer(uow, customer).id)
        if subscription is not None:
            query = query.where(Event.subscription_id == subscription)
        return [{"id": e.id, "at": e.at, "type": e.type, "customer_id": e.customer_id,
                 "subscription_id": e.subscription_id, "invoice_id": e.invoice_id,
                 "data": e.data} for e in uow.session.scalars(query)]
    return _run(deps, read)


def list_plans(deps: Deps) -> list[dict[str, Any]]:
    """The stored catalog (``billing plans apply`` writes it from the YAML), current versions."""
    def read(uow: UnitOfWork) -> list[dict[str, Any]]:
        rows = uow.session.execute(
            select(Plan, PlanVersion).join(PlanVersion, (PlanVersion.plan_id == Plan.id)
                                           & (PlanVersion.version == Plan.current_version))
            .order_by(Plan.code))
        return [{"code": p.code, "name": p.name, "description": p.description,
                 "version": v.version, "amount": v.price, "currency": v.currency,
                 "interval_unit": v.interval_unit, "interval_count": v.interval_count,
                 "trial_days": p.trial_days, "setup_fee": p.setup_fee, "archived": p.archived}
                for p, v in rows]
    return _run(deps, read)


# -- reports ------------------------------------------------------------------------------------

def build_report(deps: Deps, first: date | None, last: date | None, timezone: str) -> Report:
    """The report ``billing report`` prints, for local days ``first`` to ``last`` (default:
    last month), as of the engine's clock."""
    at = deps.clock.now()
    default_first, default_last = previous_month(at, timezone)
    rng = report_range(first or default_first, last or default_last, timezone, at)
    return reports.build_report(deps.store, rng)
