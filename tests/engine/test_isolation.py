"""One bad item never stops a tick: failing items are planted among healthy ones in every tick,
on SQLite and PostgreSQL, and the healthy ones are billed while the bad ones are recorded,
alerted once and backed off, then cleared once they are fixed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import typer
from sqlalchemy import insert, select, update

from billing.cli.engine_cmd import _report_failures
from billing.daemon.ticks import PassReport, run_once
from billing.gateway import GatewayReply, OrderInfo
from billing.sandbox import cards
from billing.services.isolation import ItemError
from billing.store.models import (
    Card,
    Customer,
    GatewayNotification,
    Invoice,
    ItemFailure,
    PaymentAttempt,
    Subscription,
)
from billing.store.uow import UnitOfWork
from tests.engine.harness import World


def _sql(world: World, stmt: Any) -> None:
    with UnitOfWork(world.deps.store) as uow:
        uow.session.execute(stmt)
        uow.commit()


def _failures(world: World) -> dict[tuple[str, int], int]:
    with UnitOfWork(world.deps.store) as uow:
        return {(f.kind, f.item_id): f.failures
                for f in uow.session.scalars(select(ItemFailure))}


class QueryFailsFor:
    """The real gateway client, except that querying one order raises (a bug we did not
    foresee, on one item only)."""

    def __init__(self, inner: Any, order: str) -> None:
        self.inner, self.order = inner, order

    def cc_query(self, **kw: Any) -> GatewayReply[OrderInfo]:
        if kw.get("mch_order_no") == self.order:
            raise RuntimeError("unforeseen")
        reply: GatewayReply[OrderInfo] = self.inner.cc_query(**kw)
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_failing_item_in_every_tick_never_stops_the_others(world: World) -> None:
    healthy = [world.subscribe(world.customer(f"ok{n}", cards.APPROVE), "starter-monthly",
                               trial_days=0) for n in range(3)]
    dunned = world.subscribe(world.customer("dun", cards.DECLINE_INSUFFICIENT_FUNDS),
                             "starter-monthly", trial_days=0)
    renew_bad = world.subscribe(world.customer("badtz", cards.APPROVE), "starter-monthly",
                                trial_days=0)
    charge_bad = world.subscribe(world.customer("badcount", cards.APPROVE), "starter-monthly",
                                 trial_days=0)
    dunning_bad = world.subscribe(world.customer("badplan", cards.DECLINE_INSUFFICIENT_FUNDS),
                                  "pro-annual", trial_days=0)  # no renewal in the next month
    lost = world.subscribe(world.customer("lost", cards.DECLINE_INSUFFICIENT_FUNDS),
                           "starter-monthly", trial_days=0)
    world.tick()
    [lost_invoice] = world.invoices(lost)
    [lost_attempt] = world.attempts(lost_invoice.id)
    _sql(world, update(PaymentAttempt).where(PaymentAttempt.id == lost_attempt.id).values(
        state="unknown", next_check_at=world.clock.now()))  # as if its answer had been lost

    # Plant one poison per tick, as data an older version or a hand edit could leave:
    _sql(world, update(Subscription).where(Subscription.id == renew_bad)
         .values(timezone="Mars/Olympus"))                          # renew: unknown zone
    [charge_invoice] = world.invoices(charge_bad)
    _sql(world, update(Invoice).where(Invoice.id == charge_invoice.id).values(  # collect: open
        status="open", next_attempt_at=world.clock.now(),                 # with nothing owed
        amount_paid=charge_invoice.total))  # (more paid than owed: the schema refuses it now)
    [plan_invoice] = world.invoices(dunning_bad)
    _sql(world, update(Invoice).where(Invoice.id == plan_invoice.id)
         .values(dunning_plan={"steps": "garbage"}, next_attempt_at=None))  # dunning
    _sql(world, insert(GatewayNotification).values(                 # reconcile: a broken notify
        dedupe_key="broken", raw_body="{not json", received_at=world.clock.now()))
    world.deps.gateway = QueryFailsFor(world.deps.gateway, lost_attempt.mch_order_no)
    with UnitOfWork(world.deps.store) as uow:                       # daily: a broken address
        card = uow.session.scalar(select(Card).join(Customer).where(
            Customer.external_id == "ok0"))
        assert card is not None
        card.expiry = "0226"
        uow.session.execute(update(Customer).where(Customer.external_id == "ok0")
                            .values(email="not an address"))
        uow.commit()

    world.clock.advance(timedelta(days=31, minutes=5))  # the next period, retries, the query
    report = run_once(world.deps, transport=world.mail)
    world.sandbox.wait_for_notifies(5.0)

    kinds = sorted(f.kind for f in report.failed_items)
    assert kinds == ["collect.invoice", "daily.card", "dunning.subscription",
                     "reconcile.attempt", "reconcile.notification", "renew.subscription"]
    assert report.errors == {}
    for sub in healthy[1:]:  # renewed and charged despite the poison among them
        assert [i.status for i in world.invoices(sub)] == ["paid", "paid"]
    assert len(world.invoices(renew_bad)) == 1
    assert world.events("dunning.email_queued")  # the healthy dunned subscription was dunned
    assert {e.data["kind"] for e in world.events("alert.tick_item_failed")} == set(kinds)
    first = _failures(world)
    assert sorted(first.values()) == [1] * 6

    # A pass within the backoff leaves them alone; once it has passed they are tried again.
    world.clock.advance(timedelta(seconds=30))
    assert run_once(world.deps, transport=world.mail).failed_items == []
    world.clock.advance(timedelta(minutes=6))  # past the 1-minute backoff and a query's lease
    again = run_once(world.deps, transport=world.mail)
    assert len(again.failed_items) == 6
    assert sorted(_failures(world).values()) == [2] * 6
    assert len(world.events("alert.tick_item_failed")) == 6  # one alert per item, not per try

    # Fixed, and the backoff over: each succeeds, its failure row goes away.
    _sql(world, update(Subscription).where(Subscription.id == renew_bad)
         .values(timezone="America/Toronto"))
    world.clock.advance(timedelta(minutes=10))  # past the second backoff (5 minutes)
    run_once(world.deps, transport=world.mail)
    remaining = {kind for kind, _ in _failures(world)}
    assert "renew.subscription" not in remaining
    assert len(world.invoices(renew_bad)) == 2
    assert dunned  # (kept for the reader: a healthy subscription in dunning alongside)


def test_run_once_warns_about_skipped_items_and_fails_only_when_a_tick_could_not_run(
    capsys: pytest.CaptureFixture[str]
) -> None:
    report = PassReport(at="2026-01-01T00:00:00+00:00")
    report.renew.failed.append(ItemError("renew", "renew.subscription", 7, "ValueError: x"))
    _report_failures(report)  # items skipped: warnings, exit 0
    assert "renew.subscription 7" in capsys.readouterr().err
    report.errors["collect"] = "OperationalError: database is down"
    with pytest.raises(typer.Exit) as exit_:
        _report_failures(report)
    assert exit_.value.exit_code == 1
    assert "tick collect could not run" in capsys.readouterr().err
