"""Each change a customer is told about queues its email once, in the transaction that made it,
however many ticks run afterwards (both backends, against the sandbox)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from billing.sandbox import cards
from billing.services.emails import queue_trial_endings
from billing.services.subscriptions import cancel, change_plan
from billing.store.models import OutboxMessage
from billing.store.uow import UnitOfWork
from tests.engine.harness import World, at


def _queued(world: World, template: str) -> list[OutboxMessage]:
    with UnitOfWork(world.deps.store) as uow:
        return list(uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.template == template).order_by(OutboxMessage.id)))


def test_every_paid_renewal_queues_exactly_one_receipt_with_its_invoice(world: World) -> None:
    world.customer("ann", cards.APPROVE)
    sub = world.subscribe("ann", "starter-monthly", trial_days=0)
    world.run_until(at("2026-03-20"))
    world.run_until(at("2026-03-22"), step=timedelta(hours=6))  # more passes change nothing
    paid = [i for i in world.invoices(sub) if i.status == "paid"]
    assert len(paid) == 3
    receipts = _queued(world, "payment_succeeded")
    assert [r.dedupe_key for r in receipts] == [f"receipt:invoice:{i.id}" for i in paid]
    assert [r.attachments for r in receipts] == [[{"kind": "invoice", "number": i.number}]
                                                 for i in paid]
    assert all(r.sent_at is not None and r.body_html for r in receipts)
    assert [m["X-Billing-Template"] for m in world.mail.sent] == ["payment_succeeded"] * 3


def test_a_declined_invoice_queues_no_receipt(world: World) -> None:
    world.customer("cy", cards.DECLINE_INSUFFICIENT_FUNDS)
    world.subscribe("cy", "starter-monthly", trial_days=0)
    world.run_until(at("2026-01-25"))
    assert _queued(world, "payment_succeeded") == []
    assert _queued(world, "payment_failed")


def test_canceling_now_queues_one_canceled_email(world: World) -> None:
    world.customer("dee", cards.APPROVE)
    sub = world.subscribe("dee", "starter-monthly", trial_days=0)
    world.tick()
    with UnitOfWork(world.deps.store) as uow:
        cancel(uow, world.clock, sub, at_period_end=False, config=world.deps.config)
    world.run_until(at("2026-03-01"))
    [row] = _queued(world, "subscription_canceled")
    assert row.to_address == "dee@example.com" and row.sent_at is not None
    assert "Starter" in row.body_text and "January 15, 2026" in row.body_text


def test_a_cancel_at_period_end_is_announced_when_the_period_ends(world: World) -> None:
    world.customer("eve", cards.APPROVE)
    sub = world.subscribe("eve", "starter-monthly", trial_days=0)
    world.tick()
    with UnitOfWork(world.deps.store) as uow:
        cancel(uow, world.clock, sub, at_period_end=True, config=world.deps.config)
    world.run_until(at("2026-02-10"))
    assert _queued(world, "subscription_canceled") == []  # still running until Feb 15
    world.run_until(at("2026-03-20"))
    [row] = _queued(world, "subscription_canceled")
    assert world.subscription(sub).status == "canceled"
    assert "February 15, 2026" in row.body_text


def test_a_plan_change_queues_one_email_and_a_preview_none(world: World) -> None:
    world.customer("fay", cards.APPROVE)
    sub = world.subscribe("fay", "starter-monthly", trial_days=0)
    world.tick()
    with UnitOfWork(world.deps.store) as uow:
        change_plan(uow, world.clock, sub, plan="pro-monthly", preview=True,
                    config=world.deps.config)
    assert _queued(world, "plan_changed") == []
    with UnitOfWork(world.deps.store) as uow:
        change_plan(uow, world.clock, sub, plan="pro-monthly", config=world.deps.config)
    world.run_until(at("2026-01-20"))
    [row] = _queued(world, "plan_changed")
    assert "from Starter to Pro" in row.body_text and "CA$49.00" in row.body_text


def test_trial_ending_is_queued_once_three_days_before_the_trial_ends(world: World) -> None:
    world.customer("gus", cards.APPROVE)
    sub = world.subscribe("gus", "starter-monthly")  # 14-day trial: ends 2026-01-29
    trial_end = world.subscription(sub).trial_end
    assert trial_end is not None
    world.run_until(trial_end - timedelta(days=3, hours=1), step=timedelta(hours=12))
    assert _queued(world, "trial_ending") == []
    world.run_until(at("2026-02-10"), step=timedelta(hours=12))
    [row] = _queued(world, "trial_ending")
    assert trial_end - timedelta(days=3) <= row.created_at < trial_end
    assert "January 29, 2026" in row.subject and "CA$19.00" in row.body_text
    assert row.sent_at is not None


def test_a_notice_of_zero_days_sends_no_trial_ending_email(world: World) -> None:
    world.customer("hal", cards.APPROVE)
    world.subscribe("hal", "starter-monthly")
    off = replace(world.deps, config=replace(world.deps.config, trial_ending_notice=timedelta(0)))
    for day in range(15):
        assert queue_trial_endings(off, at=at("2026-01-15") + timedelta(days=day)).queued == 0
    assert _queued(world, "trial_ending") == []
    assert queue_trial_endings(world.deps, at=at("2026-01-27")).queued == 1  # 3 days: on
    assert queue_trial_endings(world.deps, at=at("2026-01-28")).queued == 0  # once
