"""Storing the catalog: versions are cut on price or interval, diffs change nothing."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from billing.catalog.loader import load_catalog
from billing.clock import FixedClock
from billing.services.catalog import ChangeKind, apply_catalog, diff_catalog
from billing.store.engine import Store
from billing.store.models import Customer, Event, PlanVersion, Subscription
from billing.store.models import Plan as PlanRow
from billing.store.uow import UnitOfWork


def _copy(plans_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "plans"
    shutil.copytree(plans_dir, target)
    return target


def _kinds(store: Store, directory: Path) -> dict[str, ChangeKind]:
    with UnitOfWork(store) as uow:
        return {c.code: c.kind for c in diff_catalog(uow, load_catalog(directory)).plans}


def _apply(store: Store, clock: FixedClock, directory: Path) -> None:
    with UnitOfWork(store) as uow:
        apply_catalog(uow, clock, load_catalog(directory))


def _add_subscription(store: Store, code: str, clock: FixedClock) -> None:
    with UnitOfWork(store) as uow:
        s = uow.session
        plan = s.scalar(select(PlanRow).where(PlanRow.code == code))
        assert plan is not None
        cust = Customer(external_id=f"c-{code}", email="c@x.io", name="C", locale="en",
                        timezone="UTC", credit_balance=0, created_at=clock.now())
        s.add(cust)
        s.flush()
        s.add(Subscription(customer_id=cust.id, plan_id=plan.id,
                           plan_version_id=plan.versions[-1].id, status="active", quantity=1,
                           timezone="UTC", anchor_date=date(2026, 1, 1), started_at=clock.now(),
                           created_at=clock.now(), updated_at=clock.now()))
        uow.commit()


def test_diff_on_empty_store_lists_new_plans_and_stores_nothing(
    store: Store, plans_dir: Path
) -> None:
    kinds = _kinds(store, plans_dir)
    assert set(kinds.values()) == {ChangeKind.NEW} and "pro-monthly" in kinds
    with UnitOfWork(store) as uow:
        assert uow.session.scalar(select(func.count(PlanRow.id))) == 0


def test_applying_twice_changes_nothing_the_second_time(
    store: Store, clock: FixedClock, plans_dir: Path
) -> None:
    _apply(store, clock, plans_dir)
    assert set(_kinds(store, plans_dir).values()) == {ChangeKind.UNCHANGED}
    with UnitOfWork(store) as uow:
        events = uow.session.scalar(select(func.count(Event.id)))
    _apply(store, clock, plans_dir)
    with UnitOfWork(store) as uow:
        assert uow.session.scalar(select(func.count(Event.id))) == events


def test_price_change_cuts_a_new_version_and_grandfathers_subscriptions(
    store: Store, clock: FixedClock, plans_dir: Path, tmp_path: Path
) -> None:
    directory = _copy(plans_dir, tmp_path)
    _apply(store, clock, directory)
    _add_subscription(store, "starter-monthly", clock)
    path = directory / "monthly.yaml"
    path.write_text(path.read_text().replace('price: "19.00"', 'price: "21.00"'))
    with UnitOfWork(store) as uow:
        change = next(c for c in diff_catalog(uow, load_catalog(directory)).plans
                      if c.code == "starter-monthly")
    assert change.kind is ChangeKind.NEW_VERSION and change.version == 2
    assert change.changes == ["price 19.00 CAD -> 21.00 CAD"]
    assert change.subscriptions == 1 and "keep v1 (grandfather)" in change.effect
    _apply(store, clock, directory)
    with UnitOfWork(store) as uow:
        plan = uow.session.scalar(select(PlanRow).where(PlanRow.code == "starter-monthly"))
        assert plan is not None and plan.current_version == 2
        assert [(v.version, v.price) for v in plan.versions] == [(1, 1900), (2, 2100)]
        sub = uow.session.scalar(select(Subscription))
        assert sub is not None
        version = uow.session.get(PlanVersion, sub.plan_version_id)
        assert version is not None and version.version == 1


def test_interval_change_under_at_renewal_says_subscriptions_move(
    store: Store, clock: FixedClock, plans_dir: Path, tmp_path: Path
) -> None:
    directory = _copy(plans_dir, tmp_path)
    _apply(store, clock, directory)
    _add_subscription(store, "pro-monthly", clock)
    path = directory / "monthly.yaml"
    text = path.read_text()
    start = text.index("code: pro-monthly")
    quarterly = text[start:].replace("unit: month", "unit: month\n      count: 3", 1)
    path.write_text(text[:start] + quarterly)
    with UnitOfWork(store) as uow:
        change = next(c for c in diff_catalog(uow, load_catalog(directory)).plans
                      if c.code == "pro-monthly")
    assert change.kind is ChangeKind.NEW_VERSION
    assert change.changes == ["interval 1 month -> 3 months"]
    assert change.effect == "1 subscription(s) move to v2 at renewal"


def test_name_change_updates_in_place_without_a_version(
    store: Store, clock: FixedClock, plans_dir: Path, tmp_path: Path
) -> None:
    directory = _copy(plans_dir, tmp_path)
    _apply(store, clock, directory)
    path = directory / "weekly.yaml"
    path.write_text(path.read_text().replace("name: Coffee of the week", "name: Weekly coffee"))
    assert _kinds(store, directory)["coffee-weekly"] is ChangeKind.UPDATED
    _apply(store, clock, directory)
    with UnitOfWork(store) as uow:
        plan = uow.session.scalar(select(PlanRow).where(PlanRow.code == "coffee-weekly"))
        assert plan is not None and plan.name == "Weekly coffee" and plan.current_version == 1


def test_plan_removed_from_yaml_is_archived_not_deleted(
    store: Store, clock: FixedClock, plans_dir: Path, tmp_path: Path
) -> None:
    directory = _copy(plans_dir, tmp_path)
    _apply(store, clock, directory)
    (directory / "weekly.yaml").unlink()
    assert _kinds(store, directory)["coffee-weekly"] is ChangeKind.ARCHIVED
    _apply(store, clock, directory)
    with UnitOfWork(store) as uow:
        plan = uow.session.scalar(select(PlanRow).where(PlanRow.code == "coffee-weekly"))
        assert plan is not None and plan.archived
