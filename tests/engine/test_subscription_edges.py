"""Edges where trust is lost: a backdated start, an import, a credit from money never paid.

Each runs the real ticks against the sandbox over HTTP and checks the sandbox's ledger.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import SecretStr
from sqlalchemy import select

from billing.domain.calendar import local_date
from billing.sandbox import cards
from billing.services.cards import add_direct
from billing.services.imports import ImportRow, import_subscriptions
from billing.services.subscriptions import ChangePreview, change_plan
from billing.store.models import Customer
from billing.store.uow import UnitOfWork
from tests.engine.harness import World, at


def test_a_start_30_months_back_charges_one_period_not_thirty(world: World) -> None:
    world.customer("ann", cards.APPROVE)
    sub = world.subscribe("ann", "starter-monthly", start=datetime(2023, 7, 15, 17, tzinfo=UTC),
                          trial_days=0)
    world.tick()
    world.tick()
    [invoice] = world.invoices(sub)
    assert invoice.status == "paid" and invoice.total == 1900
    assert local_date(invoice.period_start, "America/Toronto") == date(2026, 1, 15)
    ledger = world.sandbox.ledger()
    assert ledger.total_charges == 1 and [o.amount for o in ledger.orders] == [1900]
    world.run_until(at("2026-02-16"))
    assert [local_date(i.period_start, "America/Toronto") for i in world.invoices(sub)] == [
        date(2026, 1, 15), date(2026, 2, 15)]
    world.assert_exactly_once()


def test_an_imported_subscriber_is_first_charged_on_the_paid_through_date(world: World) -> None:
    world.customer("bo", cards.APPROVE)
    with UnitOfWork(world.deps.store) as uow:
        report = import_subscriptions(uow, world.clock, [
            ImportRow(2, "bo", "pro-monthly", date(2026, 2, 3), external_ref="old-9")],
            source="legacy.csv")
    sub = report.rows[0].subscription
    assert sub is not None
    world.run_until(at("2026-02-02"))
    assert world.invoices(sub) == []
    world.run_until(at("2026-02-03"))
    [invoice] = world.invoices(sub)
    assert invoice.status == "paid" and invoice.total == 4900  # no setup fee
    world.assert_exactly_once()


def _credit_balance(world: World, ref: str) -> int:
    with UnitOfWork(world.deps.store) as uow:
        customer = uow.session.scalar(select(Customer).where(Customer.external_id == ref))
        assert customer is not None
        return customer.credit_balance


def _downgrade_now(world: World, sub: int, when: datetime) -> ChangePreview:
    world.clock.set(when)
    with UnitOfWork(world.deps.store) as uow:
        return change_plan(uow, world.clock, sub, plan="starter-monthly", when="now")


def test_a_downgrade_after_a_paid_period_credits_the_next_invoice(world: World) -> None:
    world.customer("dot", cards.APPROVE)
    sub = world.subscribe("dot", "pro-monthly", trial_days=0)
    world.tick()
    change = _downgrade_now(world, sub, at("2026-01-30", 5))  # 16 of 31 days left
    assert (change.credit_now, change.credit_to_balance) == ("15.48 CAD", "15.48 CAD")
    assert _credit_balance(world, "dot") == 1548
    world.run_until(at("2026-02-16"))
    first, second = world.invoices(sub)
    assert (first.status, first.total) == ("paid", 7400)
    assert (second.subtotal, second.credit_applied, second.total) == (1900, 1548, 352)
    assert second.status == "paid" and _credit_balance(world, "dot") == 0
    world.assert_exactly_once()


def test_a_downgrade_in_an_unpaid_period_never_becomes_credit_for_later(world: World) -> None:
    world.customer("cy", cards.DECLINE_INSUFFICIENT_FUNDS)
    sub = world.subscribe("cy", "pro-monthly", trial_days=0)
    world.tick()
    assert world.subscription(sub).status == "past_due"
    change = _downgrade_now(world, sub, at("2026-01-20", 5))  # 26 of 31 days left: 25.16
    assert change.reduced == "INV-0000001 by 25.16 CAD" and change.credit_to_balance is None
    [invoice] = world.invoices(sub)
    assert (invoice.status, invoice.total) == ("open", 7400 - 2516)
    assert _credit_balance(world, "cy") == 0
    world.run_until(at("2026-02-05"))  # dunning gives up: cancel
    [invoice] = world.invoices(sub)
    assert invoice.status == "uncollectible"
    assert world.subscription(sub).status == "canceled"
    assert _credit_balance(world, "cy") == 0
    add_direct(world.deps, "cy", number=SecretStr(cards.APPROVE), cvv=SecretStr("123"),
               expiry="1230", holder="Cy")
    again = world.subscribe("cy", "starter-monthly", trial_days=0)
    world.tick()
    [fresh] = world.invoices(again)
    assert (fresh.subtotal, fresh.credit_applied, fresh.total, fresh.status) == (
        1900, 0, 1900, "paid")
    world.assert_exactly_once()
