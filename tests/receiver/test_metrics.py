"""``Metrics``: counters with bounded labels, gauges read from the database at scrape time."""

from __future__ import annotations

from pathlib import Path

import prometheus_client

from billing.clock import FixedClock
from billing.metrics import Metrics
from billing.sandbox import cards
from billing.services.collection import collect_due
from billing.services.ports import Deps
from billing.store.engine import Store
from tests.receiver.helpers import subscribe


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.charge("failed", 1850, "CAD")
    assert first.registry.get_sample_value("billing_charges_total", {"outcome": "failed"}) == 1
    assert second.registry.get_sample_value("billing_charges_total", {"outcome": "failed"}) == 0
    assert prometheus_client.REGISTRY.get_sample_value(
        "billing_charges_total", {"outcome": "failed"}) is None


def test_only_succeeded_charges_add_to_the_amount() -> None:
    metrics = Metrics()
    metrics.charge("succeeded", 1850, "CAD")
    metrics.charge("succeeded", 150, "CAD")
    metrics.charge("failed", 999, "CAD")
    metrics.charge("unknown", 999, "CAD")
    sample = metrics.registry.get_sample_value
    assert sample("billing_charged_amount_cents_total", {"currency": "CAD"}) == 2000
    assert sample("billing_charges_total", {"outcome": "succeeded"}) == 2
    assert sample("billing_charges_total", {"outcome": "unknown"}) == 1


def test_unexpected_label_values_are_counted_as_other_and_never_raise() -> None:
    metrics = Metrics()
    metrics.charge("exploded", 1, "CAD")
    metrics.charge("succeeded", 5, "not a currency")
    metrics.notify("whatever")
    metrics.notify_lag(-3.0)
    sample = metrics.registry.get_sample_value
    assert sample("billing_charges_total", {"outcome": "other"}) == 1
    assert sample("billing_charged_amount_cents_total", {"currency": "other"}) == 5
    assert sample("billing_notifies_total", {"result": "other"}) == 1
    assert sample("billing_notify_lag_seconds_count") == 0


def test_database_gauges_are_read_at_scrape_time(store: Store, clock: FixedClock,
                                                 deps: Deps) -> None:
    metrics = Metrics(store, clock)
    sample = metrics.registry.get_sample_value
    assert sample("billing_invoices_due") == 0
    subscribe(deps, cards.PENDING_THEN_APPROVE)
    assert sample("billing_invoices_due") == 1
    assert sample("billing_subscriptions", {"status": "active"}) == 1
    collect_due(deps)
    assert sample("billing_invoices_due") == 0
    assert sample("billing_attempts_in_flight", {"state": "pending"}) == 1
    assert sample("billing_db_up") == 1


def test_a_database_that_is_down_gives_db_up_0_not_a_failed_scrape(
    tmp_path: Path, clock: FixedClock
) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/missing/billing.db")
    try:
        metrics = Metrics(store, clock)
        assert metrics.registry.get_sample_value("billing_db_up") == 0
        assert b"billing_db_up 0.0" in metrics.exposition()
    finally:
        store.close()
