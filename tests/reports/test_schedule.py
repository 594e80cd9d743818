"""The daemon's report tick: last month's report on the 1st, once, however many times or
processes run it; never on other days; last week's on Mondays when asked."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from billing.catalog.loader import load_catalog
from billing.clock import FixedClock
from billing.daemon.ticks import BY_NAME, TickContext, run_once
from billing.reports import build_report
from billing.reports.figures import Report
from billing.reports.period import ReportRange
from billing.reports.schedule import ReportSchedule, queue_due_reports
from billing.services.catalog import apply_catalog
from billing.services.ports import Deps
from billing.store.engine import Store
from billing.store.models import OutboxMessage
from billing.store.uow import UnitOfWork

SCHEDULE = ReportSchedule("America/Toronto", "owner@shop.example", "Shop", weekly=False)
FIRST_OF_DECEMBER = datetime(2026, 12, 1, 9, tzinfo=UTC)  # 04:00 in Toronto


@pytest.fixture
def shop(store: Store, plans_dir: Path) -> Store:
    """An empty shop with the example catalog: a report in CAD with nothing in it."""
    with UnitOfWork(store) as uow:
        apply_catalog(uow, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)), load_catalog(plans_dir))
    return store


def reports(store: Store) -> list[OutboxMessage]:
    with UnitOfWork(store) as uow:
        return list(uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.template == "report").order_by(OutboxMessage.id)))


def test_the_first_of_the_month_queues_last_months_report_once(shop: Store) -> None:
    first = queue_due_reports(shop, SCHEDULE, at=FIRST_OF_DECEMBER)
    again = queue_due_reports(shop, SCHEDULE, at=FIRST_OF_DECEMBER.replace(hour=23))
    assert first.queued == ["report:monthly:2026-11"] and again.queued == []
    [row] = reports(shop)
    assert row.dedupe_key == "report:monthly:2026-11" and row.to_address == "owner@shop.example"
    assert row.subject == "Shop: monthly billing report, November 2026"
    assert row.created_at == FIRST_OF_DECEMBER
    assert "Shop · 2026-11-01 to 2026-11-30 (America/Toronto)" in row.body_text
    assert row.body_html is not None and row.body_html.count("<svg ") == 3


@pytest.mark.parametrize("at", [
    datetime(2026, 12, 1, 4, 59, tzinfo=UTC),  # 23:59 on Nov 30 in Toronto
    datetime(2026, 12, 2, 5, 0, tzinfo=UTC),
    datetime(2026, 12, 15, 12, tzinfo=UTC),
    datetime(2026, 12, 31, 23, tzinfo=UTC),
])
def test_other_days_queue_nothing(shop: Store, at: datetime) -> None:
    assert queue_due_reports(shop, SCHEDULE, at=at).queued == []
    assert reports(shop) == []


def test_two_daemons_on_the_first_queue_one_report(db_url: str, shop: Store) -> None:
    """Both pass the "not queued yet" check before either has built its report (the barrier),
    so the outbox's unique dedupe key is what decides."""
    barrier = threading.Barrier(2, timeout=30)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def build_together(store: Store, rng: ReportRange) -> Report:
        barrier.wait()
        return build_report(store, rng)

    def daemon() -> None:
        own = Store.open(db_url)  # its own engine, connections and sessions
        try:
            results.append(queue_due_reports(own, SCHEDULE, at=FIRST_OF_DECEMBER,
                                             build=build_together).queued)
        except BaseException as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=daemon) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(results) == [[], ["report:monthly:2026-11"]]
    assert [r.dedupe_key for r in reports(shop)] == ["report:monthly:2026-11"]


def test_mondays_queue_last_weeks_report_only_when_asked(shop: Store) -> None:
    monday = datetime(2026, 12, 7, 14, tzinfo=UTC)
    assert queue_due_reports(shop, SCHEDULE, at=monday).queued == []
    weekly = ReportSchedule("America/Toronto", "owner@shop.example", "Shop", weekly=True)
    assert queue_due_reports(shop, weekly, at=monday).queued == ["report:weekly:2026-W49"]
    assert queue_due_reports(shop, weekly, at=monday.replace(hour=20)).queued == []
    [row] = reports(shop)
    assert row.subject == "Shop: weekly billing report, 2026-11-30 to 2026-12-06"


def test_the_daemons_report_tick_reads_the_settings(shop: Store,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_MERCHANT_EMAIL", "books@shop.example")
    monkeypatch.setenv("BILLING_TIMEZONE", "Asia/Tokyo")  # already Dec 1 there at 15:30 UTC
    deps = Deps(shop, gateway=None, clock=FixedClock(FIRST_OF_DECEMBER))  # type: ignore[arg-type]
    at = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)
    assert BY_NAME["report"].run(deps, TickContext(at=at)).queued == ["report:monthly:2026-11"]
    assert [r.to_address for r in reports(shop)] == ["books@shop.example"]


def test_a_pass_of_run_once_leaves_reports_to_the_daemon(shop: Store) -> None:
    deps = Deps(shop, gateway=None, clock=FixedClock(FIRST_OF_DECEMBER))  # type: ignore[arg-type]
    report = run_once(deps, at=FIRST_OF_DECEMBER)
    assert report.errors == {} and reports(shop) == []
