"""A downgrade applied now credits only money that was paid for the period.

Ann subscribes to pro-monthly (49.00 + 25.00 setup) on 2026-01-15; on 2026-01-30 at Toronto
midnight 16 of the period's 31 days are left, so moving to starter-monthly (19.00) now is worth
(49.00 - 19.00) x 16/31 = 15.48 to her.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from billing.clock import FixedClock
from billing.errors import Conflict
from billing.services.subscriptions import change_plan, create_subscription
from billing.store.engine import Store
from billing.store.models import Customer, Event, Invoice, PaymentAttempt, Subscription
from billing.store.uow import UnitOfWork

CHANGE_AT = datetime(2026, 1, 30, 5, tzinfo=UTC)
CREDIT = 1548


def _subscribe(store: Store, clock: FixedClock, **kwargs: Any) -> int:
    kwargs.setdefault("plan", "pro-monthly")
    with UnitOfWork(store) as uow:
        return int(create_subscription(uow, clock, customer="ann", trial_days=0, **kwargs)["id"])


def _set_invoice(store: Store, sub_id: int, **fields: Any) -> None:
    with UnitOfWork(store) as uow:
        [invoice] = uow.session.scalars(select(Invoice).where(Invoice.subscription_id == sub_id))
        for name, value in fields.items():
            setattr(invoice, name, value)
        uow.commit()


def _state(store: Store, sub_id: int) -> dict[str, Any]:
    """Everything a change could touch, to compare before and after."""
    with UnitOfWork(store) as uow:
        s = uow.session
        sub = s.get(Subscription, sub_id)
        customer = s.scalar(select(Customer).where(Customer.external_id == "ann"))
        assert sub is not None and customer is not None
        invoices = [(i.number, i.status, i.subtotal, i.credit_applied, i.total,
                     [(line.kind, line.amount) for line in i.lines])
                    for i in s.scalars(select(Invoice).order_by(Invoice.id))]
        return {"plan": sub.plan_version_id, "quantity": sub.quantity, "status": sub.status,
                "balance": customer.credit_balance, "invoices": invoices,
                "events": len(list(s.scalars(select(Event.id))))}


def _downgrade(store: Store, clock: FixedClock, sub_id: int, **kwargs: Any) -> dict[str, Any]:
    clock.set(CHANGE_AT)
    kwargs.setdefault("plan", "starter-monthly")
    with UnitOfWork(store) as uow:
        return asdict(change_plan(uow, clock, sub_id, when="now", **kwargs))


def test_with_the_period_paid_the_credit_goes_to_the_balance(
    shop: Store, clock: FixedClock
) -> None:
    sub = _subscribe(shop, clock)
    _set_invoice(shop, sub, status="paid", amount_paid=7400, next_attempt_at=None)
    preview = _downgrade(shop, clock, sub, preview=True)
    assert (preview["credit_now"], preview["credit_to_balance"]) == ("15.48 CAD", "15.48 CAD")
    assert preview["reduced"] is None and preview["credit_forfeited"] is None
    before = _state(shop, sub)
    done = _downgrade(shop, clock, sub)
    assert done == preview
    after = _state(shop, sub)
    assert after["balance"] == CREDIT and after["invoices"] == before["invoices"]


def test_with_the_period_unpaid_the_open_invoice_is_reduced_and_nothing_credited(
    shop: Store, clock: FixedClock
) -> None:
    sub = _subscribe(shop, clock)
    preview = _downgrade(shop, clock, sub, preview=True)
    assert preview["reduced"] == "INV-0000001 by 15.48 CAD"
    assert preview["credit_to_balance"] is None and preview["credit_forfeited"] is None
    assert _downgrade(shop, clock, sub) == preview
    state = _state(shop, sub)
    assert state["balance"] == 0
    [(number, status, subtotal, credit_applied, total, lines)] = state["invoices"]
    assert (number, status) == ("INV-0000001", "open")
    assert lines == [("subscription", 4900), ("setup_fee", 2500), ("proration", -CREDIT)]
    assert subtotal == sum(amount for _, amount in lines) == 7400 - CREDIT
    assert total == subtotal - credit_applied == 7400 - CREDIT
    with UnitOfWork(shop) as uow:
        [reduced] = uow.session.scalars(select(Event).where(Event.type == "invoice.reduced"))
        assert reduced.data == {"number": "INV-0000001", "amount": CREDIT, "total": 5852}
        [changed] = uow.session.scalars(select(Event).where(
            Event.type == "subscription.plan_changed"))
        assert changed.data["reduced"] == {"INV-0000001": CREDIT}


@pytest.mark.parametrize("status", ["uncollectible", "void"])
def test_with_the_period_uncollectible_there_is_no_credit_at_all(
    shop: Store, clock: FixedClock, status: str
) -> None:
    sub = _subscribe(shop, clock)
    _set_invoice(shop, sub, status=status, next_attempt_at=None)
    before = _state(shop, sub)
    done = _downgrade(shop, clock, sub)
    assert done["credit_forfeited"] == (f"15.48 CAD: INV-0000001 is {status}: nothing was paid "
                                        "for this period")
    assert done["reduced"] is None and done["credit_to_balance"] is None
    after = _state(shop, sub)
    assert after["balance"] == 0 and after["invoices"] == before["invoices"]


def test_a_charge_in_flight_refuses_the_change_and_changes_nothing(
    shop: Store, clock: FixedClock
) -> None:
    sub = _subscribe(shop, clock)
    with UnitOfWork(shop) as uow:
        [invoice] = uow.session.scalars(select(Invoice))
        uow.session.add(PaymentAttempt(
            invoice_id=invoice.id, attempt_no=1, mch_order_no="T-1-1", amount=invoice.total,
            currency="CAD", gateway_card_id="card_1", state="pending", created_at=clock.now()))
        uow.commit()
    before = _state(shop, sub)
    for preview in (True, False):
        with pytest.raises(Conflict) as info:
            _downgrade(shop, clock, sub, preview=preview)
        assert str(info.value) == ("a charge for INV-0000001 is in progress; try again in a "
                                   "few minutes")
    assert _state(shop, sub) == before


def test_an_invoice_reduced_to_zero_is_paid_and_ends_past_due(
    shop: Store, clock: FixedClock
) -> None:
    with UnitOfWork(shop) as uow:
        customer = uow.session.scalar(select(Customer).where(Customer.external_id == "ann"))
        assert customer is not None
        customer.credit_balance = 3000
        uow.commit()
    sub = _subscribe(shop, clock, plan="starter-monthly", quantity=2)  # 38.00 - 30.00 credit
    _set_invoice(shop, sub, dunning_started_at=clock.now())
    with UnitOfWork(shop) as uow:
        row = uow.session.get(Subscription, sub)
        assert row is not None
        row.status = "past_due"
        uow.commit()
    done = _downgrade(shop, clock, sub, plan=None, quantity=1)
    # 19.00 x 16/31 = 9.81: 8.00 clears the invoice, 1.81 of the 30.00 balance paid comes back
    assert (done["credit_now"], done["reduced"], done["credit_to_balance"]) == (
        "9.81 CAD", "INV-0000001 by 8.00 CAD", "1.81 CAD")
    state = _state(shop, sub)
    [(_, status, subtotal, credit_applied, total, _)] = state["invoices"]
    assert (status, subtotal, credit_applied, total) == ("paid", 3000, 3000, 0)
    assert state["balance"] == 181 and state["status"] == "active"


@pytest.mark.postgresql_only
@pytest.mark.timeout(30)
def test_an_invoice_locked_by_a_collection_tick_refuses_at_once_instead_of_waiting(
    shop: Store, clock: FixedClock
) -> None:
    sub = _subscribe(shop, clock)
    before = _state(shop, sub)
    with shop.engine.connect() as other, other.begin():
        # what create_intents holds while it writes an attempt (FOR UPDATE SKIP LOCKED)
        other.execute(text("SELECT id FROM invoices WHERE number = 'INV-0000001' FOR UPDATE"))
        with pytest.raises(Conflict, match="a charge for INV-0000001 is in progress"):
            _downgrade(shop, clock, sub)
    assert _state(shop, sub) == before
    assert _downgrade(shop, clock, sub)["reduced"] == "INV-0000001 by 15.48 CAD"
