"""Importing subscribers paid up to a date: no period is billed twice, all rows or none."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.clock import FixedClock
from billing.domain.calendar import local_date
from billing.errors import FileProblems
from billing.services.customers import add_customer
from billing.services.imports import ImportReport, ImportRow, import_subscriptions
from billing.services.renewal import renew_subscription
from billing.store.engine import Store
from billing.store.models import Card, Customer, Event, Invoice, Subscription
from billing.store.uow import UnitOfWork

TZ = "America/Toronto"
FILE = "subs.csv"


def row(line: int, **fields: Any) -> ImportRow:
    values: dict[str, Any] = {"customer": "ann", "plan": "pro-monthly",
                              "paid_through": date(2026, 2, 1)}
    values.update(fields)
    return ImportRow(line=line, **values)


def _import(store: Store, clock: FixedClock, *rows: ImportRow, dry_run: bool = False
            ) -> ImportReport:
    with UnitOfWork(store) as uow:
        return import_subscriptions(uow, clock, list(rows), source=FILE, dry_run=dry_run)


def _problems(store: Store, clock: FixedClock, *rows: ImportRow) -> list[str]:
    with pytest.raises(FileProblems) as info:
        _import(store, clock, *rows)
    return [str(p) for p in info.value.problems]


def _count(store: Store, model: Any) -> int:
    with UnitOfWork(store) as uow:
        return int(uow.session.scalar(select(func.count(model.id))) or 0)


def _subscription(store: Store, sub_id: int | None) -> Subscription:
    with UnitOfWork(store) as uow:
        sub = uow.session.get(Subscription, sub_id)
        assert sub is not None
        return sub


def _add_card(store: Store, customer: str, card_id: str, status: str = "active") -> None:
    with UnitOfWork(store) as uow:
        cust = uow.session.scalar(select(Customer).where(Customer.external_id == customer))
        assert cust is not None
        uow.session.add(Card(customer_id=cust.id, gateway_card_id=card_id, status=status,
                             created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        uow.commit()


def test_an_imported_subscription_bills_nothing_until_its_paid_through_date(
    shop: Store, clock: FixedClock
) -> None:
    report = _import(shop, clock, row(2, quantity=2, external_ref="legacy-17"))
    [outcome] = report.rows
    assert (report.imported, report.skipped, outcome.outcome) == (1, 0, "imported")
    assert outcome.note == "next invoice 2026-02-01"
    sub = _subscription(shop, outcome.subscription)
    assert (sub.status, sub.anchor_date, sub.quantity) == ("active", date(2026, 2, 1), 2)
    assert sub.next_renewal_at is not None
    assert local_date(sub.next_renewal_at, TZ) == date(2026, 2, 1)
    assert sub.next_renewal_at.astimezone(UTC).hour == 5  # Toronto's midnight
    assert _count(shop, Invoice) == 0
    with UnitOfWork(shop) as uow:
        [event] = uow.session.scalars(select(Event).where(Event.type == "subscription.imported"))
        assert event.data["external_ref"] == "legacy-17" and event.data["line"] == 2
        live = uow.session.get(Subscription, sub.id)
        assert live is not None
        assert renew_subscription(uow.session, live, datetime(2026, 1, 31, 12, tzinfo=UTC)) == []
        [invoice] = renew_subscription(uow.session, live, datetime(2026, 2, 1, 12, tzinfo=UTC))
        # 2 x 49.00 and no setup fee: the other system collected it long ago
        assert invoice.total == 9800 and [line.kind for line in invoice.lines] == ["subscription"]
        assert local_date(invoice.period_start, TZ) == date(2026, 2, 1)


def test_a_paid_through_date_already_reached_bills_that_one_period_now(
    shop: Store, clock: FixedClock
) -> None:
    report = _import(shop, clock, row(2, paid_through=date(2026, 1, 1)))
    assert report.rows[0].note.startswith("invoiced now: INV-")
    with UnitOfWork(shop) as uow:
        [invoice] = uow.session.scalars(select(Invoice))
        assert local_date(invoice.period_start, TZ) == date(2026, 1, 1)
        assert local_date(invoice.period_end, TZ) == date(2026, 2, 1)
        assert invoice.total == 4900


def test_one_bad_row_imports_nothing_and_every_problem_is_reported(
    shop: Store, clock: FixedClock
) -> None:
    _add_card(shop, "ann", "card_ann")
    with UnitOfWork(shop) as uow:
        add_customer(uow, clock, external_id="bob", email="bob@example.com", name="Bob",
                     timezone="Europe/Paris")
    problems = _problems(
        shop, clock,
        row(2),                                               # good
        row(3, customer="ghost", plan="nope"),
        row(4, paid_through=date(2025, 12, 1), quantity=500_000),
        row(5, customer="bob", card="card_ann", external_ref="x"),
        row(6, paid_through=date(2032, 1, 1), external_ref="y"),
    )
    assert problems == [
        "subs.csv:3: customer: no customer 'ghost'; add it first (billing customers add)",
        "subs.csv:3: plan: no plan 'nope'; run `billing plans apply` after adding it",
        "subs.csv:4: paid_through: 2025-12-01 is more than one period (1 month) before today "
        "(2026-01-15): importing would bill 2 periods at once; settle the arrears in the other "
        "system first, or give a later date",
        "subs.csv:4: quantity: one period of 500000 x 49.00 CAD would be 24500000.00 CAD, more "
        "than the 21474836.47 CAD the gateway can charge in one payment",
        "subs.csv:5: card: customer bob has no active card 'card_ann'",
        "subs.csv:6: paid_through: 2032-01-01 is more than 5 years ahead (after "
        "2031-01-19); a typo?",
    ]
    assert (_count(shop, Subscription), _count(shop, Invoice)) == (0, 0)
    with UnitOfWork(shop) as uow:
        assert uow.session.scalar(select(func.count(Event.id)).where(
            Event.type == "subscription.imported")) == 0


def test_reimporting_the_same_rows_skips_them(shop: Store, clock: FixedClock) -> None:
    rows = [row(2, external_ref="a"), row(3, external_ref="b", plan="starter-monthly"),
            row(4, plan="coffee-weekly", paid_through=date(2026, 1, 20))]
    first = _import(shop, clock, *rows)
    clock.set(datetime(2026, 3, 10, 12, tzinfo=UTC))  # later: the dates are now long past
    again = _import(shop, clock, *rows, row(5, external_ref="c", paid_through=date(2026, 3, 20)))
    assert (again.imported, again.skipped) == (1, 3)
    assert [o.outcome for o in again.rows] == ["skipped", "skipped", "skipped", "imported"]
    assert [o.subscription for o in again.rows[:3]] == [o.subscription for o in first.rows]
    assert _count(shop, Subscription) == 4


def test_the_same_external_ref_with_other_terms_is_an_error(
    shop: Store, clock: FixedClock
) -> None:
    first = _import(shop, clock, row(2, external_ref="a"))
    sub_id = first.rows[0].subscription
    assert _problems(shop, clock, row(7, external_ref="a", plan="starter-monthly")) == [
        f"subs.csv:7: external_ref: 'a' was already imported for ann as subscription {sub_id} "
        "(plan pro-monthly, paid through 2026-02-01); change that subscription instead of "
        "importing it again"]


def test_two_rows_for_one_subscription_in_a_file_are_refused(
    shop: Store, clock: FixedClock
) -> None:
    assert _problems(shop, clock, row(2, external_ref="a"), row(3, external_ref="a"),
                     row(4), row(5)) == [
        "subs.csv:3: external_ref: 'a' is also on line 2 for customer ann; each subscription "
        "needs its own",
        "subs.csv:5: customer: the same subscription as line 4 (customer ann, plan pro-monthly, "
        "paid_through 2026-02-01); give each row an external_ref to import both",
    ]
    assert _count(shop, Subscription) == 0


def test_a_dry_run_reports_and_stores_nothing(shop: Store, clock: FixedClock) -> None:
    events = _count(shop, Event)
    report = _import(shop, clock, row(2, paid_through=date(2026, 1, 10)), dry_run=True)
    assert report.dry_run and report.imported == 1
    assert [(o.outcome, o.subscription, o.note) for o in report.rows] == [
        ("would import", None, "invoiced now")]
    assert (_count(shop, Subscription), _count(shop, Invoice), _count(shop, Event)) == (
        0, 0, events)


def test_a_named_card_must_be_an_active_card_of_that_customer(
    shop: Store, clock: FixedClock
) -> None:
    _add_card(shop, "ann", "card_old", status="removed")
    _add_card(shop, "ann", "card_new")
    assert _problems(shop, clock, row(2, card="card_old")) == [
        "subs.csv:2: card: customer ann has no active card 'card_old'"]
    report = _import(shop, clock, row(2, card="card_new"))
    with UnitOfWork(shop) as uow:
        sub = uow.session.get(Subscription, report.rows[0].subscription)
        assert sub is not None and sub.card_id is not None
        card = uow.session.get(Card, sub.card_id)
        assert card is not None and card.gateway_card_id == "card_new"


def test_an_imported_subscription_changes_plan_at_its_first_renewal_not_before(
    shop: Store, clock: FixedClock
) -> None:
    from billing.errors import Conflict
    from billing.services.subscriptions import change_plan

    sub_id = _import(shop, clock, row(2, plan="starter-monthly")).rows[0].subscription
    assert sub_id is not None
    with UnitOfWork(shop) as uow, pytest.raises(Conflict, match="no period billed yet"):
        change_plan(uow, clock, sub_id, plan="pro-monthly", when="now")
    with UnitOfWork(shop) as uow:
        change = change_plan(uow, clock, sub_id, plan="pro-monthly", when="period_end")
    assert change.applies == "period_end" and _count(shop, Invoice) == 0
