"""The check of watched pay-now orders before a retry (an adversarial review's repros, asserting
what must happen): one invoice whose check raises waits alone and is alerted, the others are
still charged; the batch limit counts whole invoices, so an invoice is never charged after
only some of its abandoned pages were asked about; and invoices the gateway cannot answer for
do not starve the rest. Real sandbox over HTTP, both databases."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import requests
from pydantic import SecretStr
from sqlalchemy import select

from billing.catalog.loader import load_catalog
from billing.clock import FixedClock
from billing.gateway import GatewayNotSent
from billing.sandbox import SandboxServer, cards
from billing.services.cards import add_direct
from billing.services.catalog import apply_catalog
from billing.services.collection import collect_due
from billing.services.customers import add_customer
from billing.services.paynow import start_pay_now
from billing.services.ports import Deps
from billing.services.reconcile import reconcile
from billing.services.subscriptions import create_subscription
from billing.services.watched import KIND, watched_orders
from billing.store.engine import Store
from billing.store.models import Alert, Invoice, ItemFailure, PaymentAttempt
from billing.store.uow import UnitOfWork
from tests.receiver.helpers import PLANS
from tests.receiver.test_receiver_paynow_money import submit_only


class FailingQueries:
    """The real sandbox client, but ``cc_query`` about the given orders raises ``error``: a
    bug on one item (any exception) or a gateway that cannot be reached for it."""

    def __init__(self, inner: Any, orders: set[str], error: Exception) -> None:
        self.inner, self.orders, self.error = inner, orders, error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def cc_query(self, *, mch_order_no: str, **kw: Any) -> Any:
        if mch_order_no in self.orders:
            raise self.error
        return self.inner.cc_query(mch_order_no=mch_order_no, **kw)


def in_dunning(deps: Deps, customers: int) -> list[int]:
    """``customers`` weekly customers whose card was declined: one open invoice each, due again
    later, in dunning. Returns the invoice ids in order."""
    with UnitOfWork(deps.store) as uow:
        apply_catalog(uow, deps.clock, load_catalog(PLANS))
    for n in range(customers):
        ref = f"cus_{n}"
        with UnitOfWork(deps.store) as uow:
            add_customer(uow, deps.clock, external_id=ref, email=f"{ref}@example.com",
                         name=f"Customer {n}", timezone="America/Toronto")
        add_direct(deps, ref, number=SecretStr(cards.DECLINE_INSUFFICIENT_FUNDS),
                   cvv=SecretStr("123"), expiry="1230", holder="Ann Example")
        with UnitOfWork(deps.store) as uow:
            create_subscription(uow, deps.clock, customer=ref, plan="coffee-weekly")
    assert collect_due(deps).outcomes == {"failed": customers}
    with UnitOfWork(deps.store) as uow:
        return list(uow.session.scalars(select(Invoice.id).order_by(Invoice.id)))


def abandon_pages(deps: Deps, clock: FixedClock, invoice_ids: list[int]) -> dict[int, str]:
    """Each invoice's customer opens a hosted page and walks away; returns the page URLs."""
    pages = {i: start_pay_now(deps, i) for i in invoice_ids}
    clock.set(clock.now() + deps.config.pay_now_lifetime + timedelta(minutes=1))
    reconcile(deps)
    return pages


def watched(store: Store, invoice_id: int) -> list[str]:
    with UnitOfWork(store) as uow:
        return list(uow.session.scalars(select(PaymentAttempt.mch_order_no).where(
            PaymentAttempt.invoice_id == invoice_id, PaymentAttempt.state == "watched")
            .order_by(PaymentAttempt.id)))


def scheduled_tries(store: Store, invoice_id: int) -> int:
    with UnitOfWork(store) as uow:
        return len(uow.session.scalars(select(PaymentAttempt.id).where(
            PaymentAttempt.invoice_id == invoice_id,
            PaymentAttempt.source == "scheduled")).all())


def due_again(deps: Deps, clock: FixedClock) -> None:
    with UnitOfWork(deps.store) as uow:
        due = uow.session.scalar(select(Invoice.next_attempt_at).order_by(
            Invoice.next_attempt_at.desc()).limit(1))
    assert due is not None
    clock.set(max(clock.now(), due))


def test_an_invoice_whose_watched_check_raises_waits_alone_and_the_others_are_charged(
    deps: Deps, store: Store, sandbox: SandboxServer, clock: FixedClock,
) -> None:
    first, second, third = in_dunning(deps, 3)
    abandon_pages(deps, clock, [first, second, third])
    due_again(deps, clock)
    bad = replace(deps, gateway=FailingQueries(deps.gateway, set(watched(store, second)),
                                               ValueError("a reply nobody expected")))
    summary = collect_due(bad)  # must not raise: one item's bug is that item's
    assert summary.attempts == 2
    assert [scheduled_tries(store, i) for i in (first, second, third)] == [2, 1, 2]
    assert watched(store, second)  # still watched, still blocking its own invoice only
    with UnitOfWork(store) as uow:
        [failure] = uow.session.scalars(select(ItemFailure))
        assert (failure.kind, failure.item_id) == (KIND, second)
        assert failure.error.startswith("ValueError")
        keys = list(uow.session.scalars(select(Alert.key)))
    assert f"tick_item_failed:collect:{KIND}:{second}" in keys
    # Backed off, then asked again once the bug is gone: the invoice is charged, the alert ends.
    clock.set(clock.now() + timedelta(minutes=2))
    assert collect_due(deps).attempts == 1
    assert scheduled_tries(store, second) == 2
    with UnitOfWork(store) as uow:
        assert uow.session.scalars(select(ItemFailure)).all() == []
        resolved = uow.session.scalars(select(Alert.resolved_at).where(
            Alert.key == f"tick_item_failed:collect:{KIND}:{second}")).one()
    assert resolved is not None


def test_the_batch_limit_counts_invoices_so_a_paid_second_page_is_never_skipped(
    deps: Deps, store: Store, sandbox: SandboxServer, clock: FixedClock,
    http: requests.Session,
) -> None:
    [invoice] = in_dunning(deps, 1)
    abandon_pages(deps, clock, [invoice])
    [page] = abandon_pages(deps, clock, [invoice]).values()  # a second tab, abandoned too
    first, second = watched(store, invoice)
    sandbox.set_faults(delayed_notify_rate=1.0, notify_delay_ms=3_600_000)  # no notify here
    submit_only(http, page, cards.APPROVE)  # the second page is paid after all
    deps = replace(deps, config=replace(deps.config, batch_size=1))
    assert [o for _, _, o in watched_orders(deps, [], 1)] == [first, second]
    due_again(deps, clock)
    assert collect_due(deps).attempts == 0  # both pages asked: the invoice is paid, not charged
    with UnitOfWork(store) as uow:
        paid = uow.session.get(Invoice, invoice)
        assert paid is not None and (paid.status, paid.amount_paid) == ("paid", paid.total)
    assert scheduled_tries(store, invoice) == 1
    assert sandbox.ledger().charges(second) == 1


def test_invoices_the_gateway_cannot_answer_for_do_not_starve_the_others(
    deps: Deps, store: Store, sandbox: SandboxServer, clock: FixedClock,
) -> None:
    first, second = in_dunning(deps, 2)
    abandon_pages(deps, clock, [first, second])
    due_again(deps, clock)
    unreachable = GatewayNotSent("connection refused", endpoint="cc_query")
    deps = replace(deps, config=replace(deps.config, batch_size=1),
                   gateway=FailingQueries(deps.gateway, set(watched(store, first)), unreachable))
    for _ in range(4):  # a few ticks, a few minutes apart
        collect_due(deps)
        clock.set(clock.now() + timedelta(minutes=2))
    assert scheduled_tries(store, second) == 2  # asked about and charged in its turn
    assert scheduled_tries(store, first) == 1  # never charged while it cannot be asked
