"""Edges where trust is lost: a backdated start, an import, a credit from money never paid.

Each runs the real ticks against the sandbox over HTTP and checks the sandbox's ledger.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from billing.domain.calendar import local_date
from billing.sandbox import cards
from billing.services.imports import ImportRow, import_subscriptions
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
