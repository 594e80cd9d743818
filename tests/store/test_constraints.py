"""The schema itself refuses states that would lose or double money."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError

from billing.store.engine import Store
from billing.store.models import (
    Customer,
    Invoice,
    PaymentAttempt,
    Plan,
    PlanVersion,
    Subscription,
)
from billing.store.uow import UnitOfWork

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _seed(store: Store) -> dict[str, int]:
    with UnitOfWork(store) as uow:
        s = uow.session
        cust = Customer(external_id="c1", email="c@x.io", name="C", locale="en",
                        timezone="UTC", credit_balance=0, created_at=AT)
        plan = Plan(code="p", name="P", currency="CAD", trial_days=0, retry_schedule=[],
                    dunning_policy="standard", migration="grandfather", current_version=1,
                    updated_at=AT)
        plan.versions.append(PlanVersion(version=1, price=1000, currency="CAD",
                                         interval_unit="month", interval_count=1, content={},
                                         created_at=AT))
        s.add_all([cust, plan])
        s.flush()
        sub = Subscription(customer_id=cust.id, plan_id=plan.id,
                           plan_version_id=plan.versions[0].id, status="active", quantity=1,
                           timezone="UTC", anchor_date=date(2026, 1, 1), started_at=AT,
                           created_at=AT, updated_at=AT)
        s.add(sub)
        s.flush()
        inv = _invoice(cust.id, sub.id, "INV-1", AT)
        s.add(inv)
        s.flush()
        ids = {"customer": cust.id, "subscription": sub.id, "invoice": inv.id}
        uow.commit()
    return ids


def _invoice(customer_id: int, sub_id: int, number: str, start: datetime, **kw: Any) -> Invoice:
    fields: dict[str, Any] = dict(
        number=number, customer_id=customer_id, subscription_id=sub_id, kind="renewal",
        period_start=start, period_end=start + timedelta(days=31), currency="CAD",
        subtotal=1000, total=1000, issued_at=start, due_at=start, status="open",
    )
    fields.update(kw)
    return Invoice(**fields)


def _attempt(invoice_id: int, no: int, state: str, order: str | None = None) -> PaymentAttempt:
    return PaymentAttempt(invoice_id=invoice_id, attempt_no=no,
                          mch_order_no=order or f"ORD{invoice_id}-{no}", amount=1000,
                          currency="CAD", gateway_card_id="card1", state=state, created_at=AT)


def _fails(store: Store, *rows: object) -> None:
    with UnitOfWork(store) as uow, pytest.raises(IntegrityError):
        uow.session.add_all(rows)
        uow.session.flush()


def test_second_invoice_for_the_same_subscription_period_is_refused(store: Store) -> None:
    ids = _seed(store)
    _fails(store, _invoice(ids["customer"], ids["subscription"], "INV-2", AT))


def test_invoice_numbers_are_unique(store: Store) -> None:
    ids = _seed(store)
    _fails(store, _invoice(ids["customer"], ids["subscription"], "INV-1", AT + timedelta(days=40)))


def test_negative_invoice_total_is_refused(store: Store) -> None:
    ids = _seed(store)
    _fails(store, _invoice(ids["customer"], ids["subscription"], "INV-3",
                           AT + timedelta(days=40), total=-1))


def test_refunds_can_never_exceed_what_was_paid(store: Store) -> None:
    ids = _seed(store)
    _fails(store, _invoice(ids["customer"], ids["subscription"], "INV-3",
                           AT + timedelta(days=40), amount_paid=500, amount_refunded=501))


def test_order_numbers_are_unique_across_invoices(store: Store) -> None:
    ids = _seed(store)
    with UnitOfWork(store) as uow:
        uow.session.add(_attempt(ids["invoice"], 1, "failed", order="SAME"))
        uow.commit()
    _fails(store, _attempt(ids["invoice"], 2, "failed", order="SAME"))


@pytest.mark.parametrize("first,second", [("sending", "pending"), ("unknown", "sending"),
                                          ("pending", "unknown")])
def test_only_one_attempt_per_invoice_may_be_in_flight(
    store: Store, first: str, second: str
) -> None:
    ids = _seed(store)
    with UnitOfWork(store) as uow:
        uow.session.add(_attempt(ids["invoice"], 1, first))
        uow.commit()
    _fails(store, _attempt(ids["invoice"], 2, second))


def test_failed_attempts_do_not_block_a_new_one(store: Store) -> None:
    ids = _seed(store)
    with UnitOfWork(store) as uow:
        uow.session.add_all([_attempt(ids["invoice"], 1, "failed"),
                             _attempt(ids["invoice"], 2, "failed_not_sent"),
                             _attempt(ids["invoice"], 3, "sending")])
        uow.commit()


def test_only_one_attempt_per_invoice_may_succeed(store: Store) -> None:
    ids = _seed(store)
    with UnitOfWork(store) as uow:
        uow.session.add(_attempt(ids["invoice"], 1, "succeeded"))
        uow.commit()
    _fails(store, _attempt(ids["invoice"], 2, "succeeded"))


def test_watched_and_duplicate_attempts_sit_outside_both_unique_indexes(store: Store) -> None:
    """Any number of duplicates (each a late success the invoice did not need) and of watched
    pay-now pages beside one success and one attempt in flight: recording one never fails."""
    ids = _seed(store)
    with UnitOfWork(store) as uow:
        uow.session.add_all([_attempt(ids["invoice"], 1, "watched"),
                             _attempt(ids["invoice"], 2, "watched"),
                             _attempt(ids["invoice"], 3, "succeeded"),
                             _attempt(ids["invoice"], 4, "duplicate"),
                             _attempt(ids["invoice"], 5, "duplicate"),
                             _attempt(ids["invoice"], 6, "pending")])
        uow.commit()
    with UnitOfWork(store) as uow, pytest.raises(IntegrityError):  # the CHECK still lists them
        uow.session.execute(text("UPDATE payment_attempts SET state = 'parked' "
                                 "WHERE attempt_no = 1"))


def test_naive_datetimes_never_reach_the_store(store: Store) -> None:
    with UnitOfWork(store) as uow, pytest.raises(StatementError, match="naive datetime"):
        uow.session.add(Customer(external_id="n", email="n@x.io", name="N", locale="en",
                                 timezone="UTC", credit_balance=0,
                                 created_at=datetime(2026, 1, 1)))
        uow.session.flush()


def test_instants_come_back_aware_utc(store: Store) -> None:
    _seed(store)
    with UnitOfWork(store) as uow:
        inv = uow.session.query(Invoice).one()
        assert inv.period_start == AT
        assert inv.period_start.tzinfo is not None
        assert inv.period_start.utcoffset() == timedelta(0)


def test_an_invoice_can_never_be_paid_beyond_its_total(store: Store) -> None:
    ids = _seed(store)
    _fails(store, _invoice(ids["customer"], ids["subscription"], "INV-4",
                           AT + timedelta(days=40), status="paid", amount_paid=1001))
    with UnitOfWork(store) as uow:  # exactly the total is a paid invoice
        uow.session.add(_invoice(ids["customer"], ids["subscription"], "INV-5",
                                 AT + timedelta(days=80), status="paid", amount_paid=1000))
        uow.commit()
