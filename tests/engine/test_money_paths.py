"""Money paths an adversarial review found open, each reproduced against the sandbox over HTTP
on SQLite and PostgreSQL: a failed re-send must never give an unresolved order a new number, an
order the gateway may still process is never closed after one "not found", a refund that landed
is always counted, an unreachable gateway is backed off, and a dunning email queued before a
cancel or a payment is taken back."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from billing.daemon.ticks import send_outbox
from billing.gateway import GatewayNotSent
from billing.sandbox import cards
from billing.services.collection import collect_due
from billing.services.reconcile import reconcile
from billing.services.refunds import refund_invoice, resolve_due_refunds
from billing.services.subscriptions import cancel
from billing.store.uow import UnitOfWork
from tests.engine.harness import World

PURCHASE = "cc_purchasewithtoken"


class NotSentOn:
    """The sandbox client, except that the calls of ``method`` numbered in ``fail`` are refused
    before they leave (a connection refused)."""

    def __init__(self, inner: Any, method: str, fail: set[int] | range) -> None:
        self.inner, self.method, self.fail, self.calls = inner, method, fail, 0

    def __getattr__(self, name: str) -> Any:
        if name != self.method:
            return getattr(self.inner, name)

        def call(**kw: Any) -> Any:
            self.calls += 1
            if self.calls in self.fail:
                raise GatewayNotSent(f"{name}: request not sent: ConnectionError("
                                     "MaxRetryError(NewConnectionError))", endpoint=name)
            return getattr(self.inner, name)(**kw)
        return call


def _land(world: World) -> None:
    time.sleep(3.0)  # the slow first request finishes at the gateway
    world.sandbox.wait_for_notifies(5.0)
    world.settle(world.notifies_applied)


def test_a_resend_that_never_leaves_keeps_the_order_unresolved_not_renumbered(
    world: World
) -> None:
    world.customer("ann", cards.APPROVE)
    sub = world.subscribe("ann", "starter-monthly", trial_days=0)
    slow = world.sandbox.client(timeout=(2.0, 0.3))
    world.deps.gateway = NotSentOn(slow, PURCHASE, fail={2})
    world.sandbox.set_faults(latency_ms=2500, endpoints=(PURCHASE,))
    collect_due(world.deps)                     # read timeout: unknown
    world.clock.advance(timedelta(minutes=2))
    reconcile(world.deps)                       # not found yet -> re-sent -> not sent
    assert [a.state for a in world.attempts()] == ["unknown"]
    world.sandbox.clear_faults()
    world.clock.advance(timedelta(minutes=2))
    collect_due(world.deps)                     # no new number while it is unresolved
    _land(world)
    world.clock.advance(timedelta(minutes=10))
    reconcile(world.deps)
    [invoice] = world.invoices(sub)
    assert invoice.status == "paid" and len(world.attempts()) == 1
    world.assert_exactly_once()


def test_an_order_still_in_flight_for_a_written_off_invoice_is_found_when_it_lands(
    world: World
) -> None:
    world.customer("eve", cards.APPROVE)
    sub = world.subscribe("eve", "starter-monthly", trial_days=0)
    world.deps.gateway = world.sandbox.client(timeout=(2.0, 0.3))
    world.deps.config = replace(world.deps.config, public_url="http://127.0.0.1:9")  # no notify
    world.sandbox.set_faults(latency_ms=2500, endpoints=(PURCHASE,))
    collect_due(world.deps)
    with UnitOfWork(world.deps.store) as uow:
        cancel(uow, world.clock, sub, at_period_end=False)
    world.clock.advance(timedelta(minutes=2))
    reconcile(world.deps)                       # not found: not re-sent, but not closed either
    assert [a.state for a in world.attempts()] == ["unknown"]
    _land(world)
    for _ in range(3):
        world.clock.advance(timedelta(days=1))
        reconcile(world.deps)
    [invoice] = world.invoices(sub)
    [attempt] = world.attempts()
    assert world.sandbox.ledger().charges(attempt.mch_order_no) == 1
    assert (invoice.status, attempt.state) == ("paid", "succeeded")  # money taken is recorded
    assert world.events("alert.subscription_event")  # ...and a person is told: refund it


def test_an_order_the_gateway_never_got_is_closed_after_a_day_of_not_found(
    world: World
) -> None:
    world.customer("ida", cards.APPROVE)
    sub = world.subscribe("ida", "starter-monthly", trial_days=0)
    world.sandbox.set_faults(error_500_rate=1.0, endpoints=(PURCHASE,))
    collect_due(world.deps)                     # 500 before processing: unknown
    with UnitOfWork(world.deps.store) as uow:
        cancel(uow, world.clock, sub, at_period_end=False)
    world.sandbox.clear_faults()
    for step in (timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=2),
                 timedelta(days=1), timedelta(days=1)):
        world.clock.advance(step)
        reconcile(world.deps)
    [attempt] = world.attempts()
    assert attempt.state == "failed_not_sent"
    assert world.sandbox.ledger().total_charges == 0


def test_a_refund_that_landed_is_counted_even_after_its_resend_failed(world: World) -> None:
    world.customer("fay", cards.APPROVE)
    sub = world.subscribe("fay", "starter-monthly", trial_days=0)
    collect_due(world.deps)
    world.sandbox.wait_for_notifies(5.0)
    world.settle(world.notifies_applied)
    [invoice] = world.invoices(sub)
    world.deps.gateway = NotSentOn(world.sandbox.client(timeout=(2.0, 0.3)), "cc_refund",
                                   fail={2})
    world.sandbox.set_faults(latency_ms=2500, endpoints=("cc_refund",))
    assert refund_invoice(world.deps, invoice.number, amount=500).state == "unknown"
    world.clock.advance(timedelta(minutes=2))
    resolve_due_refunds(world.deps)             # not found yet -> re-sent -> not sent
    world.sandbox.clear_faults()
    _land(world)
    [attempt] = world.attempts()
    order = world.sandbox.ledger().order(attempt.mch_order_no)
    assert order is not None
    [invoice] = world.invoices(sub)
    assert invoice.amount_refunded == order.refunded == 500


def test_an_unreachable_gateway_is_backed_off_and_alerted_once(world: World) -> None:
    world.customer("cy", cards.APPROVE)
    sub = world.subscribe("cy", "starter-monthly", trial_days=0)
    world.deps.gateway = NotSentOn(world.deps.gateway, PURCHASE, fail=range(1, 10_000))
    for _ in range(6 * 60):  # six hours of one-minute passes
        collect_due(world.deps)
        world.clock.advance(timedelta(minutes=1))
    [invoice] = world.invoices(sub)
    assert invoice.attempt_count <= 8  # 1 m, 5 m, 30 m, 2 h, then every 6 h
    assert len(world.events("alert.gateway_unreachable")) == 1


def test_a_dunning_email_queued_before_a_cancel_is_taken_back(world: World) -> None:
    world.customer("bob", cards.DECLINE_INSUFFICIENT_FUNDS)
    sub = world.subscribe("bob", "starter-monthly", trial_days=0)
    collect_due(world.deps)                     # declined: payment_failed queued
    with UnitOfWork(world.deps.store) as uow:
        cancel(uow, world.clock, sub, at_period_end=False)
    world.clock.advance(timedelta(seconds=10))
    send_outbox(world.deps, world.mail)
    assert world.mail.sent == []


def test_a_resend_counts_as_the_retry_it_is(world: World) -> None:
    world.customer("gus", cards.DECLINE_INSUFFICIENT_FUNDS)
    world.subscribe("gus", "starter-monthly", trial_days=0)
    start = world.clock.now()
    collect_due(world.deps)                     # declined: retries at 1d, 3d, 5d, 7d
    world.clock.set(start + timedelta(days=1, minutes=1))
    world.sandbox.set_faults(error_500_rate=1.0)
    collect_due(world.deps)                     # the 1d retry: 500, unknown; queries fail too
    for later in (timedelta(minutes=3), timedelta(minutes=10), timedelta(hours=2),
                  timedelta(days=1, hours=3), timedelta(days=2, hours=4)):
        world.clock.set(start + timedelta(days=1) + later)
        reconcile(world.deps)
    world.sandbox.clear_faults()
    world.clock.set(start + timedelta(days=4, hours=5))
    reconcile(world.deps)                       # not found -> re-sent (a charge) -> declined
    before = world.sandbox.request_count(PURCHASE)
    world.clock.advance(timedelta(seconds=5))
    collect_due(world.deps)
    assert world.sandbox.request_count(PURCHASE) == before  # next retry at 5d, not now
