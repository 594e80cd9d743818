"""Months of billing, simulated day by day against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import yaml
from pydantic import SecretStr

from billing.domain.calendar import local_date
from billing.sandbox import cards
from billing.services.cards import add_direct
from billing.services.subscriptions import cancel, change_plan, pause, reactivate, resume
from billing.store.uow import UnitOfWork
from tests.engine.harness import PLANS, World, at


def _local_days(world: World, sub_id: int) -> list[date]:
    return [local_date(i.period_start, "America/Toronto") for i in world.invoices(sub_id)]


def test_trial_then_first_paid_period(world: World) -> None:
    world.customer("ann", cards.APPROVE)
    sub = world.subscribe("ann", "starter-monthly")  # 14-day trial
    assert world.subscription(sub).status == "trialing" and world.invoices(sub) == []
    world.run_until(at("2026-01-28"))
    assert world.invoices(sub) == []
    world.run_until(at("2026-01-29"))
    [invoice] = world.invoices(sub)
    assert invoice.status == "paid" and invoice.total == 1900
    assert local_date(invoice.period_start, "America/Toronto") == date(2026, 1, 29)
    assert world.subscription(sub).status == "active"
    world.assert_exactly_once()


def test_declines_then_recovers_on_a_retry(world: World) -> None:
    world.customer("bo", cards.DECLINE_TWICE_THEN_APPROVE)
    sub = world.subscribe("bo", "pro-monthly", trial_days=0)  # retries at 1d, 3d, 5d, 7d
    world.tick()
    assert world.subscription(sub).status == "past_due"
    world.run_until(at("2026-01-20"))
    [invoice] = world.invoices(sub)
    assert invoice.status == "paid" and invoice.attempt_count == 3
    assert invoice.total == 4900 + 2500  # first period and the setup fee
    assert world.subscription(sub).status == "active"
    sent = [m["X-Billing-Template"] for m in world.mail.sent]
    assert sent == ["payment_failed", "payment_succeeded"]  # recovered before the reminder
    world.assert_exactly_once()


def test_declines_through_dunning_to_cancellation(world: World) -> None:
    world.customer("cy", cards.DECLINE_INSUFFICIENT_FUNDS)
    sub = world.subscribe("cy", "starter-monthly", trial_days=0)
    world.run_until(at("2026-02-05"))
    [invoice] = world.invoices(sub)
    state = world.subscription(sub)
    assert state.status == "canceled" and invoice.status == "uncollectible"
    steps = [e.data["email"] for e in world.events("dunning.email_queued")]
    assert steps == ["payment_failed", "reminder", "final_notice"]
    assert [m["X-Billing-Template"] for m in world.mail.sent] == [
        "payment_failed", "reminder", "final_notice", "subscription_canceled"]
    final = world.events("dunning.final_action")
    assert [e.data["action"] for e in final] == ["cancel"]
    # the plan's retry schedule [1d, 3d, 5d, 7d] is the whole list of retries: the first charge
    # and four retries, on schedule, and no unscheduled charge before the final action at 14d
    attempts = sorted(a.created_at for a in world.attempts(invoice.id))
    first = attempts[0]
    assert [t - first for t in attempts] == [timedelta(days=d) for d in (0, 1, 3, 5, 7)]
    assert final[0].at - first == timedelta(days=14)
    world.run_until(at("2026-03-01"))
    assert len(world.invoices(sub)) == 1  # no renewals after cancellation
    world.assert_exactly_once()


def test_hard_decline_stops_retries_until_a_new_card(world: World) -> None:
    world.customer("dee", cards.DECLINE_EXPIRED_CARD)
    sub = world.subscribe("dee", "starter-monthly", trial_days=0)
    world.run_until(at("2026-01-20"))
    [invoice] = world.invoices(sub)
    assert invoice.hard_declined and invoice.attempt_count == 1
    add_direct(world.deps, "dee", number=SecretStr(cards.APPROVE), cvv=SecretStr("321"),
               expiry="1230", holder="Dee")
    world.tick()
    [invoice] = world.invoices(sub)
    assert invoice.status == "paid" and invoice.attempt_count == 2
    assert world.subscription(sub).status == "active"
    world.assert_exactly_once()


def test_month_end_anchor_bills_the_last_day_of_short_months(world: World) -> None:
    world.clock.set(at("2026-01-31", 15))
    world.customer("eve", cards.APPROVE)
    sub = world.subscribe("eve", "starter-monthly", trial_days=0)
    world.run_until(at("2026-05-31", 15))
    assert _local_days(world, sub) == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31),
                                       date(2026, 4, 30), date(2026, 5, 31)]
    assert all(i.status == "paid" for i in world.invoices(sub))
    world.assert_exactly_once()


def test_downtime_catches_up_each_missed_period_once_in_order(world: World) -> None:
    world.customer("fay", cards.APPROVE)
    sub = world.subscribe("fay", "coffee-weekly", trial_days=0)
    world.clock.set(at("2026-02-20"))  # five weeks without a single tick
    world.tick()
    world.tick()
    starts = _local_days(world, sub)
    assert starts == [date(2026, 1, 15) + timedelta(weeks=n) for n in range(6)]
    assert [i.status for i in world.invoices(sub)] == ["paid"] * 6
    world.assert_exactly_once()


def test_upgrade_mid_period_charges_the_exact_proration(world: World) -> None:
    world.customer("gus", cards.APPROVE)
    sub = world.subscribe("gus", "starter-monthly", trial_days=0)  # Jan 15 - Feb 15, 31 days
    world.clock.set(at("2026-01-30", 5))  # exactly 16 days before Feb 15 05:00 UTC (Toronto 0h)
    with UnitOfWork(world.deps.store) as uow:
        preview = change_plan(uow, world.clock, sub, plan="pro-monthly", preview=True)
    assert preview.applies == "now" and preview.charge_now == "15.48 CAD"  # 3000 * 16/31
    assert len(world.invoices(sub)) == 1  # the preview changed nothing
    with UnitOfWork(world.deps.store) as uow:
        done = change_plan(uow, world.clock, sub, plan="pro-monthly")
    assert done.invoice is not None
    world.tick()
    _, proration = world.invoices(sub)
    assert proration.kind == "proration" and proration.total == 1548 and proration.status == "paid"
    world.run_until(at("2026-02-16"))
    renewal = world.invoices(sub)[-1]
    assert renewal.kind == "renewal" and renewal.total == 4900  # no second setup fee
    world.assert_exactly_once()


def test_downgrade_waits_for_the_period_end(world: World) -> None:
    world.customer("hal", cards.APPROVE)
    sub = world.subscribe("hal", "pro-monthly", trial_days=0)
    with UnitOfWork(world.deps.store) as uow:
        change = change_plan(uow, world.clock, sub, plan="starter-monthly")
    assert change.applies == "period_end" and change.charge_now is None
    world.run_until(at("2026-02-16"))
    assert [i.total for i in world.invoices(sub)] == [4900 + 2500, 1900]
    world.assert_exactly_once()


def test_pause_skips_periods_and_resume_reanchors(world: World) -> None:
    world.customer("ida", cards.APPROVE)
    sub = world.subscribe("ida", "starter-monthly", trial_days=0)
    world.clock.set(at("2026-02-01"))
    with UnitOfWork(world.deps.store) as uow:
        pause(uow, world.clock, sub)
    world.run_until(at("2026-03-20"))
    assert len(world.invoices(sub)) == 1  # Feb 15 and Mar 15 were not billed
    with UnitOfWork(world.deps.store) as uow:
        resume(uow, world.clock, sub)
    starts = _local_days(world, sub)
    assert starts == [date(2026, 1, 15), date(2026, 3, 20)]
    world.run_until(at("2026-04-21"))
    assert _local_days(world, sub)[-1] == date(2026, 4, 20)
    world.assert_exactly_once()


def test_cancel_at_period_end_can_be_undone_until_then(world: World) -> None:
    world.customer("jo", cards.APPROVE)
    sub = world.subscribe("jo", "starter-monthly", trial_days=0)
    with UnitOfWork(world.deps.store) as uow:
        cancel(uow, world.clock, sub, at_period_end=True)
    with UnitOfWork(world.deps.store) as uow:
        reactivate(uow, world.clock, sub)
    world.run_until(at("2026-02-16"))
    assert len(world.invoices(sub)) == 2
    with UnitOfWork(world.deps.store) as uow:
        cancel(uow, world.clock, sub, at_period_end=True)
    world.run_until(at("2026-03-20"))
    assert len(world.invoices(sub)) == 2 and world.subscription(sub).status == "canceled"
    world.assert_exactly_once()


def test_pending_charge_is_settled_by_the_gateways_notify(world: World) -> None:
    world.customer("kim", cards.PENDING_THEN_APPROVE)
    sub = world.subscribe("kim", "starter-monthly", trial_days=0)
    world.tick()
    [invoice] = world.invoices(sub)
    [attempt] = world.attempts(invoice.id)
    assert invoice.status == "open" and attempt.state == "pending"
    world.clock.set(world.clock.now() + timedelta(minutes=3))  # the sandbox settles after 2 min
    world.sandbox.settle_due()
    assert world.sandbox.wait_for_notifies(5.0)
    assert world.settle(lambda: world.invoices(sub)[0].status == "paid")
    notified = [e for e in world.events("payment.succeeded") if e.data.get("source") == "notify"]
    assert len(notified) == 1
    world.tick()  # reconciliation finds nothing left to do
    world.assert_exactly_once()


def test_card_expiring_notice_is_sent_once_a_month_ahead(world: World) -> None:
    world.customer("lea", cards.APPROVE, expiry="0226")
    world.subscribe("lea", "starter-monthly", trial_days=0)
    world.tick()
    assert [e.data["card_id"] for e in world.events("card.expiring_notice")] == []
    world.run_until(at("2026-02-01"))
    world.run_until(at("2026-02-05"))
    notices = world.events("card.expiring_notice")
    assert len(notices) == 1
    assert sum("expir" in s.lower() for s, _ in world.emails()) == 1


def test_a_policy_edit_does_not_reschedule_an_invoice_already_in_dunning(
    world: World, tmp_path: Path
) -> None:
    world.customer("eve", cards.DECLINE_INSUFFICIENT_FUNDS)
    sub = world.subscribe("eve", "starter-monthly", trial_days=0)
    world.tick()  # first decline: dunning starts under the shipped policy (cancel at 14d)
    [invoice] = world.invoices(sub)
    assert world.subscription(sub).status == "past_due" and invoice.dunning_started_at

    # The merchant relaxes the policy and the retries while the invoice is in dunning.
    edited = tmp_path / "plans"
    shutil.copytree(PLANS, edited)
    dunning = yaml.safe_load((edited / "dunning.yaml").read_text())
    [standard] = [p for p in dunning["dunning_policies"] if p["name"] == "standard"]
    standard["final_action"] = {"after": "60d", "action": "leave_past_due"}
    (edited / "dunning.yaml").write_text(yaml.safe_dump(dunning))
    monthly = (edited / "monthly.yaml").read_text()
    assert monthly.count("retry_schedule: [1d, 3d, 5d, 7d]") >= 1
    (edited / "monthly.yaml").write_text(
        monthly.replace("retry_schedule: [1d, 3d, 5d, 7d]", "retry_schedule: [20d]"))
    world.apply_plans(edited)

    world.run_until(at("2026-02-05"))
    [invoice] = world.invoices(sub)
    # The invoice kept the schedule it started with: retries at 1, 3, 5 and 7 days (then one
    # before each later escalation), and cancel at 14 days.
    assert world.subscription(sub).status == "canceled" and invoice.status == "uncollectible"
    first, *later = sorted(a.created_at for a in world.attempts(invoice.id))
    assert [round((t - first) / timedelta(days=1)) for t in later[:4]] == [1, 3, 5, 7]
    assert [e.data["action"] for e in world.events("dunning.final_action")] == ["cancel"]
    world.assert_exactly_once()
