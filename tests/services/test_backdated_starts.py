"""A start in the past bills the current period only; ``backfill`` bills the rest, bounded."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from billing.clock import FixedClock
from billing.domain.calendar import local_date
from billing.domain.starts import MAX_BACKFILL
from billing.errors import InvalidInput
from billing.services.renewal import renew_subscription
from billing.services.subscriptions import create_subscription
from billing.store.engine import Store
from billing.store.models import Event, Invoice, Subscription
from billing.store.uow import UnitOfWork

TZ = "America/Toronto"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _create(store: Store, clock: FixedClock, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("plan", "starter-monthly")
    with UnitOfWork(store) as uow:
        return create_subscription(uow, clock, customer="ann", **kwargs)


def _invoices(store: Store, sub_id: int) -> list[Invoice]:
    with UnitOfWork(store) as uow:
        return list(uow.session.scalars(select(Invoice).where(Invoice.subscription_id == sub_id)
                                        .order_by(Invoice.id)))


def _renew(store: Store, sub_id: int, at: datetime) -> int:
    with UnitOfWork(store) as uow:
        sub = uow.session.get(Subscription, sub_id)
        assert sub is not None
        issued = len(renew_subscription(uow.session, sub, at))
        uow.commit()
    return issued


def test_a_start_30_months_back_bills_only_the_period_containing_now(
    shop: Store, clock: FixedClock
) -> None:
    view = _create(shop, clock, start=datetime(2023, 7, 1, 12, tzinfo=UTC), trial_days=0)
    [invoice] = _invoices(shop, view["id"])
    assert invoice.period_index == 30 and invoice.total == 1900
    assert local_date(invoice.period_start, TZ) == date(2026, 1, 1)
    assert local_date(invoice.period_end, TZ) == date(2026, 2, 1)
    assert view["anchor"] == "2023-07-01"
    assert view["invoices_issued"] == 1
    assert view["billed"] == "period 30 (2026-01-01 to 2026-02-01)"
    assert view["not_billed"] == ("30 earlier periods (2023-07-01 to 2026-01-01); "
                                  "--backfill bills them")
    assert _renew(shop, view["id"], NOW) == 0  # the next run finds nothing left to bill
    with UnitOfWork(shop) as uow:
        [created] = uow.session.scalars(select(Event).where(Event.type == "subscription.created"))
        assert created.data["first_period"] == 30 and created.data["skipped_periods"] == 30


def test_a_month_end_start_keeps_its_calendar_when_the_past_is_skipped(
    shop: Store, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 3, 15, 12, tzinfo=UTC))
    view = _create(shop, clock, start=datetime(2024, 1, 31, 17, tzinfo=UTC), trial_days=0)
    [invoice] = _invoices(shop, view["id"])
    assert local_date(invoice.period_start, TZ) == date(2026, 2, 28)
    assert local_date(invoice.period_end, TZ) == date(2026, 3, 31)
    assert _renew(shop, view["id"], datetime(2026, 4, 1, 12, tzinfo=UTC)) == 1
    assert local_date(_invoices(shop, view["id"])[-1].period_end, TZ) == date(2026, 4, 30)


def test_a_trial_runs_from_a_past_start(shop: Store, clock: FixedClock) -> None:
    in_trial = _create(shop, clock, start=datetime(2026, 1, 10, 12, tzinfo=UTC))  # 14-day trial
    assert in_trial["status"] == "trialing" and in_trial["invoices_issued"] == 0
    assert in_trial["anchor"] == "2026-01-24" and in_trial["billed"] is None
    assert in_trial["not_billed"] is None and _invoices(shop, in_trial["id"]) == []
    ended = _create(shop, clock, start=datetime(2025, 12, 20, 12, tzinfo=UTC))
    [invoice] = _invoices(shop, ended["id"])
    assert ended["status"] == "active" and ended["anchor"] == "2026-01-03"
    assert local_date(invoice.period_start, TZ) == date(2026, 1, 3)


def test_a_future_start_bills_nothing_until_it_comes(shop: Store, clock: FixedClock) -> None:
    view = _create(shop, clock, start=datetime(2026, 3, 1, 12, tzinfo=UTC), trial_days=0)
    assert view["invoices_issued"] == 0 and view["not_billed"] is None
    assert view["next_renewal"] == "2026-03-01T05:00:00+00:00"
    assert _renew(shop, view["id"], datetime(2026, 3, 1, 12, tzinfo=UTC)) == 1


def test_backfill_bills_the_past_periods_oldest_first(shop: Store, clock: FixedClock) -> None:
    view = _create(shop, clock, plan="pro-monthly", start=datetime(2025, 10, 15, 12, tzinfo=UTC),
                   trial_days=0, backfill=True)
    invoices = _invoices(shop, view["id"])
    assert [i.period_index for i in invoices] == [0, 1, 2, 3]
    assert [local_date(i.period_start, TZ).isoformat() for i in invoices] == [
        "2025-10-15", "2025-11-15", "2025-12-15", "2026-01-15"]
    assert [i.total for i in invoices] == [4900 + 2500, 4900, 4900, 4900]  # setup fee once
    assert view["invoices_issued"] == 4 and view["not_billed"] is None
    assert view["billed"] == "periods 0 to 3 (2025-10-15 to 2026-02-15), oldest first"


def test_backfill_of_more_than_24_periods_is_refused_and_stores_nothing(
    shop: Store, clock: FixedClock
) -> None:
    with pytest.raises(InvalidInput) as info:
        _create(shop, clock, start=datetime(2023, 7, 1, 12, tzinfo=UTC), trial_days=0,
                backfill=True)
    assert str(info.value) == (
        "backfilling would bill 30 past periods (2023-07-01 to 2026-01-01); at most 24 can be "
        "billed at once, so start on 2024-01-01 or later")
    with UnitOfWork(shop) as uow:
        assert list(uow.session.scalars(select(Subscription))) == []
        assert list(uow.session.scalars(select(Invoice))) == []
    # exactly the bound is fine: 24 past periods and the current one
    view = _create(shop, clock, start=datetime(2024, 1, 1, 12, tzinfo=UTC), trial_days=0,
                   backfill=True)
    assert view["invoices_issued"] == MAX_BACKFILL + 1


@pytest.mark.parametrize("start", [datetime(9999, 12, 31, tzinfo=UTC),
                                   datetime(2031, 12, 31, tzinfo=UTC)])
def test_a_start_years_ahead_is_a_typo_not_a_crash(shop: Store, clock: FixedClock,
                                                   start: datetime) -> None:
    with pytest.raises(InvalidInput, match="more than 5 years ahead"):
        _create(shop, clock, start=start, trial_days=730)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days_back=st.integers(0, 3000), trial=st.integers(0, 60),
       plan=st.sampled_from(["starter-monthly", "coffee-weekly", "pro-annual"]))
def test_without_backfill_at_most_the_current_period_is_ever_billed_on_creation(
    shop: Store, clock: FixedClock, days_back: int, trial: int, plan: str
) -> None:
    start = datetime.fromordinal(NOW.toordinal() - days_back).replace(hour=15, tzinfo=UTC)
    view = _create(shop, clock, plan=plan, start=start, trial_days=trial)
    invoices = _invoices(shop, view["id"])
    assert len(invoices) <= 1
    for invoice in invoices:
        assert invoice.period_start <= NOW < invoice.period_end
    assert _renew(shop, view["id"], NOW) == 0
