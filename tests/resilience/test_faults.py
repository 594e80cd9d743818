"""Days of billing in-process while the sandbox misbehaves: answers lost, 5xx, slow, notifies
duplicated, delayed, reordered and forged. Exactly once must still hold.

Each world is the real engine (``run_once`` once a simulated day), the sandbox over HTTP, and the
real notify receiver (``billing.receiver``, uvicorn in this process) on the same database. Faults
stay on for eight simulated days (weekly plans renew once under them, dunning retries run under
them); then the outage ends, the engine runs past the reconciliation backoffs, and the
invariants of ``tests.resilience.support`` are checked against the sandbox's ledger and request
counts. The fault rolls are seeded and, unless a test asks for overlap, charges are sent one at
a time, so the sequence of faults is reproducible.
"""

from __future__ import annotations

import random
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from billing.clock import FixedClock
from billing.gateway import IotpayClient, QueryRetry
from billing.receiver import ReceiverServer, create_app
from billing.sandbox import cards
from billing.sandbox.merchants import DEFAULT_MERCHANT
from billing.sandbox.notifier import NotifyPolicy
from billing.sandbox.testing import FAST_NOTIFY, NotifySink, running_sandbox
from billing.services.collection import collect_due
from billing.services.notifications import apply_notification, receive_notification
from billing.services.ports import Deps, EngineConfig
from billing.store.engine import Store
from billing.store.models import PaymentAttempt
from tests.engine.harness import World, at
from tests.resilience.support import (
    PAYABLE,
    PURCHASE,
    QUERY,
    Customer,
    assert_all_resolved,
    assert_ledger_agrees,
    assert_no_blind_resend,
    assert_resent_only_after_query,
    events_of,
    invoice_cards,
    notifications,
    populate,
    wait_until,
)

pytestmark = pytest.mark.slow

START = at("2026-01-15")
FAST_QUERY_RETRY = QueryRetry(attempts=3, base_delay=0.001, max_delay=0.004)
TICK = timedelta(days=1)
DAYS = 8


@contextmanager
def fault_world(store: Store, *, read_timeout: float = 5.0, concurrency: int = 1,
                notify_policy: NotifyPolicy = FAST_NOTIFY) -> Iterator[World]:
    """Engine + sandbox + receiver on ``store``, sharing one fixed clock."""
    clock = FixedClock(START)
    receiver = ReceiverServer()
    receiver.bind()
    with (
        running_sandbox(clock=clock, seed=11, notify_policy=notify_policy) as sandbox,
        sandbox.client(query_retry=FAST_QUERY_RETRY, rng=random.Random(0),
                       timeout=(2.0, read_timeout)) as gateway,
    ):
        config = EngineConfig(public_url=receiver.url, worker="pytest",
                              charge_concurrency=concurrency)
        deps = Deps(store, gateway, clock, config)
        receiver.app = create_app(deps, mch_id=DEFAULT_MERCHANT.mch_id,
                                  mch_key=SecretStr(DEFAULT_MERCHANT.key))
        with receiver:
            world = World(deps, sandbox, clock)
            world.apply_plans()
            yield world


def customers_of(world: World) -> list[Customer]:
    """Monthly and weekly subscribers, every card behaviour of ``CARD_MIX`` on each."""
    return (populate(world, 12, plan="starter-monthly", prefix="month")
            + populate(world, 12, plan="coffee-weekly", prefix="week"))


def purchases_landed(world: World) -> bool:
    """Every order number the gateway was sent has been processed (none is still in its
    latency sleep), so a query from here on finds it."""
    sent = set(world.sandbox.request_counts().get(PURCHASE, {}))
    return sent <= {o.mch_order_no for o in world.sandbox.ledger().orders}


def settle(world: World, *, wait_for_purchases: bool = False) -> None:
    """Let the sandbox deliver every notify and the receiver apply what it stored; with
    ``wait_for_purchases``, first let slow purchases land, so that simulated hours between ticks
    are also hours for the gateway."""
    if wait_for_purchases:
        assert wait_until(lambda: purchases_landed(world), 10.0)
    assert world.sandbox.wait_for_notifies(10.0)
    assert wait_until(lambda: all(n.processed_at is not None or n.error
                                  for n in notifications(world)), 10.0)


def live_through(world: World, *, wait_for_purchases: bool = False,
                 gateway_after: IotpayClient | None = None, **faults: Any) -> None:
    """Eight days under ``faults``, then the outage ends (and, if given, the engine gets
    ``gateway_after`` for a client) and the engine catches up."""
    world.sandbox.set_faults(**faults)
    at_ = START
    while at_ <= START + timedelta(days=DAYS):
        world.sandbox.set_clock(at_)
        world.tick()
        settle(world, wait_for_purchases=wait_for_purchases)
        at_ += TICK
    world.sandbox.clear_faults()
    if gateway_after is not None:
        world.deps.gateway = gateway_after
    for later in (timedelta(hours=1), timedelta(hours=2), timedelta(days=1)):
        world.sandbox.set_clock(at_ + later)
        world.tick()
        settle(world)


def assert_invariants(world: World, customers: list[Customer]) -> int:
    """Everything the protocol promises; returns how many attempts were settled by a query."""
    assert_all_resolved(world)
    assert_ledger_agrees(world)
    world.assert_exactly_once()
    expected = invoice_cards(world, customers)
    for invoice in world.invoices():
        if expected[invoice.id] in PAYABLE:
            assert invoice.status == "paid", (invoice.number, expected[invoice.id])
        else:
            assert invoice.status != "paid", invoice.number
    settled = assert_no_blind_resend(world)
    assert_resent_only_after_query(world.sandbox, [a.mch_order_no for a in world.attempts()])
    assert [e.data for e in events_of(world, "alert.double_charge")] == []
    return settled


def resends(world: World) -> int:
    return sum(1 for a in world.attempts()
               if world.sandbox.request_count(PURCHASE, a.mch_order_no) > 1)


def states_seen(world: World) -> Counter[str]:
    return Counter(e.type for e in world.events("payment."))


HTTP_FAULTS = {
    "dropped_after_charging": dict(drop_after_charge_rate=0.5, endpoints=(PURCHASE,)),
    "500_before_processing": dict(error_500_rate=0.5, endpoints=(PURCHASE,)),
    "502_after_charging": dict(error_502_after_charge_rate=0.5, endpoints=(PURCHASE,)),
    "all_at_once_on_every_endpoint": dict(drop_after_charge_rate=0.2, error_500_rate=0.2,
                                          error_502_after_charge_rate=0.1, latency_ms=5),
}


@pytest.mark.parametrize("faults", list(HTTP_FAULTS.values()), ids=list(HTTP_FAULTS))
def test_lost_answers_are_settled_by_query_never_by_a_new_order_number(
    store: Store, faults: dict[str, Any]
) -> None:
    with fault_world(store) as world:
        customers = customers_of(world)
        live_through(world, seed=5, **faults)
        settled = assert_invariants(world, customers)
        seen = states_seen(world)
        assert seen["payment.unknown"] > 0, seen  # the fault really hid outcomes
        assert settled > 0  # and some of those were declines the engine had to look up
        if faults.get("error_500_rate"):
            # nothing happened at the gateway, so the *same* order number went out again
            assert resends(world) > 0
            assert seen["payment.resent_same_order"] > 0
        if faults.get("drop_after_charge_rate") == 0.5:
            # the charge happened: the order was looked up, never sent twice
            assert resends(world) == 0


def test_read_timeout_whose_charge_lands_later_is_found_not_charged_again(store: Store) -> None:
    with (
        fault_world(store, read_timeout=0.1, concurrency=4) as world,
        world.sandbox.client(query_retry=FAST_QUERY_RETRY) as patient,
    ):
        customers = customers_of(world)
        live_through(world, latency_ms=250, endpoints=(PURCHASE,), wait_for_purchases=True,
                     gateway_after=patient)
        settled = assert_invariants(world, customers)
        assert states_seen(world)["payment.unknown"] >= len(customers) // 2
        assert settled > 0
        # each order reached the gateway once: the late charge (or decline) was found by a query
        # or a notify, and an invoice whose card approves needed no second order number
        ledger = world.sandbox.ledger()
        for a in world.attempts():
            assert world.sandbox.request_count(PURCHASE, a.mch_order_no) == 1, a.mch_order_no
            if not ledger.charges(a.mch_order_no):
                assert world.sandbox.request_count(QUERY, a.mch_order_no) >= 1, a.mch_order_no
        expected = invoice_cards(world, customers)
        for invoice in world.invoices():
            if expected[invoice.id] in (cards.APPROVE, cards.PENDING_THEN_APPROVE):
                assert invoice.attempt_count == 1, invoice.number


def test_notifies_duplicated_delayed_reordered_and_forged_pay_each_invoice_once(
    store: Store
) -> None:
    """Every purchase answer is lost, so notifies, however mangled, are how invoices get paid
    before the first reconciliation query is due (1 min later)."""
    with fault_world(store) as world:
        customers = customers_of(world)
        live_through(world, seed=3, drop_after_charge_rate=1.0, endpoints=(PURCHASE,),
                     duplicate_notify_rate=0.7, delayed_notify_rate=0.5, notify_delay_ms=40,
                     reorder_notify_rate=0.5, forged_notify_rate=0.7)
        assert_invariants(world, customers)
        log = world.sandbox.notify_log()
        kinds = Counter(d.kind for d in log)
        assert kinds["duplicate"] > 0 and kinds["forged"] > 0, kinds
        forged = [d for d in log if d.kind == "forged"]
        assert not any(d.acknowledged for d in forged)  # refused, never stored (checked below)
        assert any(d.http_status == 400 for d in forged)
        duplicates = {d.notify_id for d in log if d.kind == "duplicate"}
        assert duplicates == {d.notify_id for d in log if d.kind == "duplicate" and d.acknowledged}
        stored = notifications(world)
        real = {d.pay_order_id for d in log if d.kind == "real" and d.pay_type == "pay"}
        assert sorted(str(n.pay_order_id) for n in stored) == sorted(real)  # one row per notify
        assert all(n.outcome == "applied" and n.error is None for n in stored), [
            (n.mch_order_no, n.outcome, n.error) for n in stored if n.outcome != "applied"]
        by_notify = Counter(e.invoice_id for e in events_of(world, "payment.succeeded")
                            if e.data["source"] == "notify")
        assert max(by_notify.values()) == 1
        # a card that approves at once is paid by its notify, long before a query is due; a
        # pending one settles later and its notify races the query
        expected = invoice_cards(world, customers)
        at_once = [i.id for i in world.invoices()
                   if expected[i.id] in (cards.APPROVE, cards.DECLINE_TWICE_THEN_APPROVE)]
        assert at_once and all(by_notify[i] == 1 for i in at_once)
        assert events_of(world, "alert.notify_discrepancy") == []


def test_slow_gateway_with_overlapping_charges_and_lost_answers(store: Store) -> None:
    with fault_world(store, concurrency=4) as world:
        customers = customers_of(world)
        live_through(world, seed=9, latency_ms=30, drop_after_charge_rate=0.3,
                     error_500_rate=0.1, duplicate_notify_rate=0.3, reorder_notify_rate=0.3)
        assert assert_invariants(world, customers) > 0
        assert states_seen(world)["payment.unknown"] > 0
        assert cards.DECLINE_INSUFFICIENT_FUNDS in {c.card for c in customers}


def test_a_notify_for_an_attempt_locked_by_another_transaction_waits_and_is_applied(
    store: Store
) -> None:
    """A notify can arrive while the purchase's own answer is being recorded (the sandbox
    notifies as soon as it charges). Applying it must wait for that row lock, not conclude the
    order is unknown: a genuine notify is never a discrepancy."""
    clock = FixedClock(START)
    with (
        running_sandbox(clock=clock) as sandbox, sandbox.client() as gateway,
        NotifySink() as sink,
    ):
        deps = Deps(store, gateway, clock,
                    EngineConfig(public_url=sink.url.removesuffix("/notify"), worker="pytest"))
        world = World(deps, sandbox, clock)
        world.apply_plans()
        populate(world, 1, mix=(cards.APPROVE,))
        sandbox.set_faults(drop_after_charge_rate=1.0, endpoints=(PURCHASE,))
        collect_due(deps)
        assert sink.wait_for(1)
        [attempt] = world.attempts()
        assert attempt.state == "unknown"
        received = receive_notification(deps, sink.received[0].body,
                                        key=SecretStr(DEFAULT_MERCHANT.key),
                                        mch_id=DEFAULT_MERCHANT.mch_id)
        notification_id = received.notification_id
        assert notification_id is not None

        locked, release = threading.Event(), threading.Event()

        def hold_the_attempt() -> None:  # as ``record`` or a reconcile claim does, briefly
            with store.sessions() as session:
                session.execute(select(PaymentAttempt).where(PaymentAttempt.id == attempt.id)
                                .with_for_update())
                locked.set()
                release.wait(10)
                session.commit()

        outcomes: list[str | None] = []
        holder = threading.Thread(target=hold_the_attempt)
        applier = threading.Thread(
            target=lambda: outcomes.append(apply_notification(deps, notification_id)))
        holder.start()
        try:
            assert locked.wait(10)
            applier.start()
            applier.join(0.3)
        finally:
            release.set()
            holder.join()
        applier.join(10)
        assert outcomes == ["applied"], [e.data for e in events_of(world,
                                                                    "alert.notify_discrepancy")]
        [invoice] = world.invoices()
        assert invoice.status == "paid"
        assert events_of(world, "alert.notify_discrepancy") == []


def test_a_gateway_that_cannot_be_reached_gets_no_order_and_a_new_attempt_is_safe(
    store: Store
) -> None:
    """Connection refused is the one failure known to have sent nothing: ``failed_not_sent``,
    and the invoice is charged again a minute later under the next number, once."""
    with fault_world(store) as world:
        customers = populate(world, 6, mix=(cards.APPROVE, cards.DECLINE_INSUFFICIENT_FUNDS))
        with socket.socket() as closed:  # a port that was free a moment ago: nothing listens
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        real = world.deps.gateway
        with IotpayClient(base_url=f"http://127.0.0.1:{port}/v3/", mch_id=DEFAULT_MERCHANT.mch_id,
                          mch_key=DEFAULT_MERCHANT.key, login_name=DEFAULT_MERCHANT.login_name,
                          query_retry=FAST_QUERY_RETRY, timeout=(1.0, 1.0)) as down:
            world.deps.gateway = down
            world.tick()
        world.deps.gateway = real
        assert {a.state for a in world.attempts()} == {"failed_not_sent"}
        assert world.sandbox.request_count(PURCHASE) == 0
        for later in (timedelta(minutes=2), timedelta(days=1, minutes=2)):
            world.sandbox.set_clock(START + later)
            world.tick()
            settle(world)
        assert_invariants(world, customers)
        for invoice in world.invoices():
            first, *rest = world.attempts(invoice.id)
            assert first.state == "failed_not_sent" and rest, invoice.number
            assert world.sandbox.ledger().order(first.mch_order_no) is None
