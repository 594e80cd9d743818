"""The edges found in the first months of production, each on SQLite and PostgreSQL against the
sandbox over HTTP: a subscription canceled or paused in dunning, answers about another order,
declines whose words sound like set-up errors, refusals of the request itself, and bounded
catch-up after downtime."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from billing.domain.invoices import InvoiceStatus
from billing.domain.subscriptions import LifecyclePolicy, OnStop, Status
from billing.errors import Conflict
from billing.gateway import IotpayClient
from billing.sandbox import DEFAULT_MERCHANT, cards
from billing.sandbox.testing import add_card
from billing.services import collection
from billing.services.cards import add_direct
from billing.services.collection import collect_due
from billing.services.installation import order_prefix
from billing.services.reconcile import reconcile
from billing.services.refunds import refund_invoice
from billing.services.renewal import renew_due
from billing.services.subscriptions import cancel, pause, resume
from billing.store.models import Alert, Invoice, PaymentAttempt, Subscription
from billing.store.uow import UnitOfWork
from tests.engine.harness import World, at


def _sql(world: World, stmt: Any) -> None:
    with UnitOfWork(world.deps.store) as uow:
        uow.session.execute(stmt)
        uow.commit()


def _alerts(world: World, type_: str) -> list[Alert]:
    with UnitOfWork(world.deps.store) as uow:
        return list(uow.session.scalars(select(Alert).where(Alert.type == type_)))


# --- finding 1: a subscription canceled or paused while its invoice is in dunning ------------


@pytest.mark.parametrize("on_cancel,fate", [(OnStop.UNCOLLECTIBLE, InvoiceStatus.UNCOLLECTIBLE),
                                            (OnStop.KEEP_OPEN, InvoiceStatus.OPEN)])
def test_canceling_during_dunning_stops_charges_and_emails_and_the_days_go_on(
    world: World, on_cancel: OnStop, fate: InvoiceStatus
) -> None:
    world.customer("gone", cards.DECLINE_INSUFFICIENT_FUNDS)
    world.customer("stays", cards.APPROVE)
    poison = world.subscribe("gone", "starter-monthly", trial_days=0)
    healthy = world.subscribe("stays", "starter-monthly", trial_days=0)
    world.tick()
    [invoice] = world.invoices(poison)
    assert invoice.dunning_started_at is not None and invoice.attempt_count == 1
    with UnitOfWork(world.deps.store) as uow:
        cancel(uow, world.clock, poison, at_period_end=False,
               policy=LifecyclePolicy(on_cancel=on_cancel))
    def to_gone() -> int:  # the healthy customer gets receipts; the canceled one, nothing
        return len([m for m in world.mail.sent if m["To"] == "gone@example.com"])

    emails_before = to_gone()
    world.run_until(at("2026-03-20"))  # past every retry, the final action and two renewals

    [invoice] = world.invoices(poison)
    assert (invoice.status, invoice.attempt_count, invoice.next_attempt_at) == (fate, 1, None)
    assert world.subscription(poison).status == "canceled"
    assert to_gone() == emails_before  # no reminder, no final notice
    assert world.events("alert.") == []
    assert [i.status for i in world.invoices(healthy)] == ["paid"] * 3
    world.assert_exactly_once()


def test_a_subscription_canceled_in_dunning_by_an_older_version_is_no_poison_pill(
    world: World
) -> None:
    """The state the old code left: canceled, its invoice still scheduled for retries and its
    final action still due. Every tick must go on for everyone else, and nobody is charged
    after cancel."""
    world.customer("gone", cards.DECLINE_INSUFFICIENT_FUNDS)
    world.customer("dunned", cards.DECLINE_INSUFFICIENT_FUNDS)
    world.customer("stays", cards.APPROVE)
    poison = world.subscribe("gone", "starter-monthly", trial_days=0)
    dunned = world.subscribe("dunned", "starter-monthly", trial_days=0)
    healthy = world.subscribe("stays", "starter-monthly", trial_days=0)
    world.tick()
    _sql(world, update(Subscription).where(Subscription.id == poison)
         .values(status=Status.CANCELED, next_renewal_at=None))
    _sql(world, update(Subscription).where(Subscription.id == dunned)
         .values(status=Status.UNPAID))  # and one "unpaid" whose final action is mark_unpaid
    world.run_until(at("2026-02-20"))

    [gone] = world.invoices(poison)
    assert gone.attempt_count == 1  # no retry charged the canceled customer's card
    assert world.subscription(poison).status == "canceled"
    assert world.sandbox.ledger().charges(world.attempts(gone.id)[0].mch_order_no) == 0
    assert [i.status for i in world.invoices(healthy)] == ["paid", "paid"]
    assert world.events("alert.") == []
    world.assert_exactly_once()


def test_pausing_during_dunning_holds_charges_and_resuming_collects(world: World) -> None:
    world.customer("holds", cards.DECLINE_INSUFFICIENT_FUNDS)
    sub = world.subscribe("holds", "pro-monthly", trial_days=0)  # retries 1d, 3d, 5d, 7d
    world.tick()
    with UnitOfWork(world.deps.store) as uow:
        pause(uow, world.clock, sub)
    world.run_until(at("2026-01-20"))
    # a new card while paused is kept for later: nothing is charged while paused
    add_direct(world.deps, "holds", number=SecretStr(cards.APPROVE), cvv=SecretStr("321"),
               expiry="1230", holder="Holds")
    world.run_until(at("2026-01-22"))
    [invoice] = world.invoices(sub)
    assert (invoice.status, invoice.attempt_count) == ("open", 1)
    assert len(world.mail.sent) == 1  # the payment-failed email before the pause, nothing since
    with UnitOfWork(world.deps.store) as uow:
        resume(uow, world.clock, sub)
    world.tick()
    invoice = world.invoices(sub)[0]
    assert (invoice.status, invoice.attempt_count) == ("paid", 2)
    assert world.subscription(sub).status == "active"
    world.assert_exactly_once()


# --- finding 2: an answer about another order ----------------------------------------------


def test_a_reply_for_another_customers_order_is_never_applied_nor_refunded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reused order number (what a restored database used to issue): the gateway answers with
    the order it already has, another customer's payment of another amount."""
    monkeypatch.setattr(collection, "new_nonce", lambda: "SAME00")
    world.customer("new", cards.APPROVE)
    sub = world.subscribe("new", "pro-monthly", trial_days=0)  # 49.00 + 25.00 setup
    [invoice] = world.invoices(sub)
    with UnitOfWork(world.deps.store) as uow:
        prefix = order_prefix(uow.session)
    number = f"{prefix}-{invoice.id}-01-SAME00"
    gateway: IotpayClient = world.deps.gateway  # type: ignore[assignment]
    add_card(gateway, "OTHER-CUSTOMER-CARD", cards.APPROVE)
    earlier = gateway.cc_purchasewithtoken(
        mch_order_no=number, mch_user_id="someone-else", card_id="OTHER-CUSTOMER-CARD",
        amount=1900, notify_url=world.deps.config.notify_url)
    assert earlier.data is not None and earlier.data.status == 2

    world.tick()
    [invoice] = world.invoices(sub)
    [attempt] = world.attempts(invoice.id)
    assert attempt.mch_order_no == number
    assert (invoice.status, invoice.amount_paid, attempt.state) == ("open", 0, "unknown")
    [alert] = _alerts(world, "alert.answer_discrepancy")
    assert set(alert.data["fields"]) >= {"amount"}
    # the query finds the same foreign order: still never applied
    world.clock.advance(timedelta(minutes=2))
    reconcile(world.deps)
    assert world.invoices(sub)[0].status == "open"
    with pytest.raises(Conflict):
        refund_invoice(world.deps, invoice.number)
    assert world.sandbox.ledger().total_charges == 1  # only the other customer's payment


def test_order_numbers_are_not_reissued_after_a_restore(world: World) -> None:
    world.customer("ann", cards.APPROVE)
    sub = world.subscribe("ann", "starter-monthly", trial_days=0)
    world.tick()
    [invoice] = world.invoices(sub)
    [first] = world.attempts(invoice.id)
    # the database goes back to before the charge (a restore): same invoice, same attempt no
    _sql(world, PaymentAttempt.__table__.delete())
    _sql(world, update(Invoice).where(Invoice.id == invoice.id).values(
        status=InvoiceStatus.OPEN, attempt_count=0, paid_at=None, amount_paid=0,
        next_attempt_at=world.clock.now()))
    [intent], _ = collection.create_intents(world.deps, world.clock.now(), 10)
    assert intent.mch_order_no.split("-")[:3] == first.mch_order_no.split("-")[:3]
    assert intent.mch_order_no != first.mch_order_no


# --- finding 7: declines by codes and fields, set-up errors by the reference -----------------


def test_a_decline_whose_words_sound_like_a_set_up_error_is_dunned(world: World) -> None:
    world.customer("rex", cards.DECLINE_RESTRICTED_MERCHANT)
    sub = world.subscribe("rex", "starter-monthly", trial_days=0)
    world.tick()
    [invoice] = world.invoices(sub)
    [attempt] = world.attempts(invoice.id)
    assert (attempt.state, attempt.decline_kind, attempt.failure_reason) == (
        "failed", "soft", "Restricted merchant category")
    assert world.subscription(sub).status == "past_due"
    assert invoice.next_attempt_at == invoice.dunning_started_at + timedelta(days=1)
    assert [s for s, _ in world.emails()] and world.events("alert.") == []


def test_a_refused_request_backs_off_alerts_once_and_dunns_nobody(world: World) -> None:
    world.customer("ann", cards.APPROVE)
    world.customer("bob", cards.APPROVE)
    subs = [world.subscribe(c, "starter-monthly", trial_days=0) for c in ("ann", "bob")]
    wrong_key = IotpayClient(base_url=world.sandbox.base_url, mch_id=DEFAULT_MERCHANT.mch_id,
                             mch_key="not-the-key", login_name=DEFAULT_MERCHANT.login_name)
    real, world.deps.gateway = world.deps.gateway, wrong_key
    start = world.clock.now()
    for hours in (0, 1, 5, 29, 30):  # the backoff is 1 h, 4 h, 1 d
        world.clock.set(start + timedelta(hours=hours))
        collect_due(world.deps)
    attempts = [len(world.attempts(i.id)) for i in world.invoices()]
    assert attempts == [4, 4]  # at 0, 1, 5 and 29 hours; not at 30
    assert [world.subscription(s).status for s in subs] == ["active", "active"]
    [alert] = _alerts(world, "alert.gateway_rejected")
    assert alert.count == 8 and len(world.events("alert.gateway_rejected")) == 2  # a day apart
    assert world.events("dunning.") == [] and world.mail.sent == []
    world.deps.gateway = real  # the merchant fixes the key: the next due charge pays
    world.clock.set(start + timedelta(hours=53))
    collect_due(world.deps)
    assert [i.status for i in world.invoices()] == ["paid", "paid"]
    world.assert_exactly_once()


# --- finding 5 (engine side): catch-up is bounded per pass ----------------------------------


def test_catching_up_thirty_months_goes_twelve_periods_per_pass(world: World) -> None:
    world.customer("old", cards.APPROVE)
    sub = world.subscribe("old", "starter-monthly", trial_days=0)
    anchor = date(2023, 7, 15)
    _sql(world, update(Subscription).where(Subscription.id == sub).values(
        anchor_date=anchor, next_period_index=1,
        next_renewal_at=at("2023-08-15", 4)))  # as if the engine had been off since 2023
    first = renew_due(world.deps)
    assert (first.invoices, first.behind) == (12, 1)
    second = renew_due(world.deps)
    assert (second.invoices, second.behind) == (12, 1)
    third = renew_due(world.deps)
    assert (third.invoices, third.behind) == (5, 0)
    assert len(world.invoices(sub)) == 1 + 29
