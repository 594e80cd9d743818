"""The engine's own changes reach the merchant's app: a paid first period and a declined one,
charged through the sandbox over HTTP, on SQLite and PostgreSQL, each event signed and filtered."""

from __future__ import annotations

from datetime import date
from typing import Any

from billing.sandbox import cards
from billing.services.cards import notify_expiring_cards
from billing.services.refunds import refund_invoice
from billing.services.subscriptions import cancel, pause
from billing.services.webhooks import deliver_due
from billing.settings import Settings
from billing.simulate import simulate
from billing.store.uow import UnitOfWork
from tests.engine.harness import World

from .conftest import Receiver, endpoint, verified


def _flush(world: World) -> None:
    """Send what the pass's notifies queued after its own webhook tick ran."""
    deliver_due(world.deps.store, world.clock, worker="test")


def _events(world: World, receiver: Receiver, path: str, secret: str) -> list[dict[str, Any]]:
    return [verified(secret, r, world.clock) for r in receiver.at(path)]


def test_a_paid_first_period_is_told_in_order_and_the_filter_holds(
        world: World, receiver: Receiver) -> None:
    every = endpoint(world.deps.store, world.clock, receiver.url("/all"))
    paid = endpoint(world.deps.store, world.clock, receiver.url("/paid"), "invoice.paid")
    world.customer("ann", cards.APPROVE)
    sub = world.subscribe("ann", "pro-monthly", trial_days=0)
    report = world.tick()
    assert report.webhooks is not None and report.webhooks.delivered >= 4  # the pass's own tick
    assert report.summary()["webhooks"]["delivered"] == report.webhooks.delivered
    _flush(world)

    [invoice] = world.invoices(sub)
    assert invoice.status == "paid"
    events = _events(world, receiver, "/all", every.secret)
    types = [e["type"] for e in events]
    assert types[:3] == ["customer.created", "card.added", "subscription.created"]
    assert {"invoice.issued", "payment.succeeded", "invoice.paid"} <= set(types)
    assert types.index("invoice.issued") < types.index("invoice.paid")
    assert len({e["id"] for e in events}) == len(events)

    by_type = {e["type"]: e["data"]["object"] for e in events}
    issued = by_type["invoice.issued"]
    assert (issued["invoice_id"], issued["invoice_number"], issued["subscription_id"]) == (
        invoice.id, invoice.number, sub)
    assert (issued["total"], issued["currency"], issued["customer_external_id"]) == (
        invoice.total, invoice.currency, "ann")
    assert (by_type["invoice.paid"]["amount"], by_type["invoice.paid"]["currency"]) == (
        invoice.total, invoice.currency)
    assert by_type["payment.succeeded"]["amount"] == invoice.total
    assert by_type["card.added"]["number"].count("*") >= 6  # masked, never the full number
    assert all(cards.APPROVE not in r.body.decode() for r in receiver.requests)

    [only] = _events(world, receiver, "/paid", paid.secret)
    assert only["type"] == "invoice.paid"
    assert only == next(e for e in events if e["type"] == "invoice.paid")
    world.assert_exactly_once()


def test_a_declined_renewal_tells_payment_failed_and_past_due(
        world: World, receiver: Receiver) -> None:
    ep = endpoint(world.deps.store, world.clock, receiver.url("/dunning"),
                  "payment.failed", "subscription.past_due", "invoice.paid")
    world.customer("cy", cards.DECLINE_INSUFFICIENT_FUNDS)
    sub = world.subscribe("cy", "pro-monthly", trial_days=0)
    world.tick()
    _flush(world)

    [invoice] = world.invoices(sub)
    assert invoice.status == "open"
    events = _events(world, receiver, "/dunning", ep.secret)
    assert [e["type"] for e in events] == ["payment.failed", "subscription.past_due"]
    failed, past_due = (e["data"]["object"] for e in events)
    assert (failed["object"], failed["invoice_id"], failed["amount"], failed["currency"]) == (
        "payment", invoice.id, invoice.total, invoice.currency)
    assert failed["reason"]
    assert (past_due["object"], past_due["subscription_id"], past_due["before"],
            past_due["after"]) == ("subscription", sub, "active", "past_due")
    world.assert_exactly_once()


def test_refund_pause_cancel_and_an_expiring_card_are_told_with_their_facts(
        world: World, receiver: Receiver) -> None:
    ep = endpoint(world.deps.store, world.clock, receiver.url("/life"), "refund.succeeded",
                  "subscription.paused", "subscription.canceled", "card.expiring")
    world.customer("dee", cards.APPROVE, expiry="0126")
    sub = world.subscribe("dee", "pro-monthly", trial_days=0)
    world.tick()
    [invoice] = world.invoices(sub)
    assert invoice.status == "paid"
    assert refund_invoice(world.deps, invoice.number, amount=500).state == "succeeded"
    with UnitOfWork(world.deps.store) as uow:
        pause(uow, world.clock, sub)
    with UnitOfWork(world.deps.store) as uow:
        cancel(uow, world.clock, sub, at_period_end=False)
    notify_expiring_cards(world.deps)
    _flush(world)

    events = _events(world, receiver, "/life", ep.secret)
    by_type = {e["type"]: e["data"]["object"] for e in events}
    assert sorted(by_type) == ["card.expiring", "refund.succeeded", "subscription.canceled",
                               "subscription.paused"]
    refund = by_type["refund.succeeded"]
    assert (refund["kind"], refund["amount"], refund["currency"], refund["invoice_number"]) == (
        "refund", 500, invoice.currency, invoice.number)
    assert (by_type["subscription.paused"]["before"],
            by_type["subscription.paused"]["after"]) == ("active", "paused")
    assert by_type["subscription.canceled"]["after"] == "canceled"
    assert by_type["card.expiring"]["expiry"] and "card_id" not in by_type["card.expiring"]


def test_a_simulation_never_posts_what_it_pretends_happened(
        world: World, receiver: Receiver, db_url: str) -> None:
    endpoint(world.deps.store, world.clock, receiver.url("/real"))
    world.customer("eve", cards.APPROVE)
    sub = world.subscribe("eve", "coffee-weekly", trial_days=0)
    world.tick()
    _flush(world)
    told = len(receiver.at("/real"))
    assert told >= 5

    timeline = simulate(Settings(database_url=db_url), world.clock, date(2026, 2, 28))
    assert sum(r["what"] == "invoice.issued" and r["subscription"] == sub
               for r in timeline) >= 5
    _flush(world)
    assert len(receiver.at("/real")) == told
