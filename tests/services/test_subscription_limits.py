"""Quantity and amount bounds in the subscription service itself, not only in the CLI: an
accepted subscription never issues an invoice the gateway could not charge."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from billing.catalog.loader import load_catalog
from billing.clock import FixedClock
from billing.domain.money import MAX_CHARGE
from billing.domain.plans import MAX_QUANTITY
from billing.errors import InvalidInput
from billing.services.catalog import apply_catalog
from billing.services.subscriptions import change_plan, create_subscription
from billing.store.engine import Store
from billing.store.models import Event, Invoice, Subscription
from billing.store.uow import UnitOfWork


def _counts(store: Store) -> tuple[int, int, int]:
    with UnitOfWork(store) as uow:
        s = uow.session
        return (s.scalar(select(func.count(Subscription.id))) or 0,
                s.scalar(select(func.count(Invoice.id))) or 0,
                s.scalar(select(func.count(Event.id))) or 0)


def test_create_refuses_the_finding_quantity_and_stores_nothing(
    shop: Store, clock: FixedClock
) -> None:
    before = _counts(shop)
    with UnitOfWork(shop) as uow, pytest.raises(InvalidInput, match="between 1 and 1000000"):
        create_subscription(uow, clock, customer="ann", plan="starter-monthly",
                            quantity=99_999_999_999, trial_days=0)
    assert _counts(shop) == before


def test_create_refuses_a_quantity_whose_first_invoice_the_gateway_cannot_take(
    shop: Store, clock: FixedClock
) -> None:
    before = _counts(shop)
    # 500,000 x 49.00 = 24,500,000.00 (+ 25.00 setup) > 21,474,836.47; the quantity alone is fine.
    with UnitOfWork(shop) as uow, pytest.raises(InvalidInput, match=r"21474836\.47 CAD"):
        create_subscription(uow, clock, customer="ann", plan="pro-monthly", quantity=500_000,
                            trial_days=0)
    assert _counts(shop) == before


def test_change_plan_refuses_an_unchargeable_quantity_and_changes_nothing(
    shop: Store, clock: FixedClock
) -> None:
    with UnitOfWork(shop) as uow:
        sub_id = create_subscription(uow, clock, customer="ann", plan="starter-monthly",
                                     quantity=2, trial_days=0)["id"]
    before = _counts(shop)
    for quantity in (MAX_QUANTITY + 1, 10**30, 0):
        with UnitOfWork(shop) as uow, pytest.raises(InvalidInput, match="quantity must be"):
            change_plan(uow, clock, sub_id, quantity=quantity, when="now")
    with UnitOfWork(shop) as uow, pytest.raises(InvalidInput, match="gateway can charge"):
        change_plan(uow, clock, sub_id, plan="pro-annual", quantity=50_000, when="period_end")
    assert _counts(shop) == before
    with UnitOfWork(shop) as uow:
        sub = uow.session.get(Subscription, sub_id)
        assert sub is not None
        assert (sub.quantity, sub.pending_quantity, sub.pending_plan_version_id) == (2, None, None)


EXTREME = """
plans:
  - code: at-limit
    name: At the limit
    price: {max}
    interval: {{unit: month}}
    dunning_policy: standard
  - code: half-and-fee
    name: Half and a fee
    price: {half}
    setup_fee: 100
    interval: {{unit: week}}
    dunning_policy: standard
"""


@pytest.fixture
def extreme_shop(shop: Store, clock: FixedClock, plans_dir: Path, tmp_path: Path) -> Store:
    folder = tmp_path / "plans"
    folder.mkdir()
    for source in plans_dir.glob("*.yaml"):
        (folder / source.name).write_text(source.read_text())
    (folder / "extreme.yaml").write_text(dedent(EXTREME.format(max=MAX_CHARGE,
                                                               half=MAX_CHARGE // 2)))
    with UnitOfWork(shop) as uow:
        apply_catalog(uow, clock, load_catalog(folder))
    return shop


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.sampled_from(["starter-monthly", "pro-monthly", "coffee-weekly", "pro-annual",
                             "at-limit", "half-and-fee"]),
       quantity=st.one_of(st.integers(1, 3), st.integers(1, MAX_QUANTITY),
                          st.integers(-3, 10**12)))
def test_any_accepted_subscription_issues_only_chargeable_invoices(
    extreme_shop: Store, clock: FixedClock, plan: str, quantity: int
) -> None:
    try:
        with UnitOfWork(extreme_shop) as uow:
            view = create_subscription(uow, clock, customer="ann", plan=plan, quantity=quantity,
                                       trial_days=0)
    except InvalidInput:
        return
    with UnitOfWork(extreme_shop) as uow:
        totals = list(uow.session.scalars(select(Invoice.total).where(
            Invoice.subscription_id == view["id"])))
    assert len(totals) == 1 and 1 <= totals[0] <= MAX_CHARGE

