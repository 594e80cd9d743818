"""Prometheus metrics for the engine and the receiver, in a registry each ``Metrics`` owns.

Why an own ``CollectorRegistry`` and not the library's global one: several apps (tests, a daemon
embedding the receiver) live in one process, and a second registration of the same name in the
global registry raises. Everything here is bounded: label values outside the documented sets are
counted as ``other`` (and logged once), so a caller's typo can neither raise into a money path nor
explode the number of series.

Counters, updated by the code that knows:

* ``billing_charges_total{outcome}``: one per purchase attempt outcome (``CHARGE_OUTCOMES``);
* ``billing_charged_amount_cents_total{currency}``: minor units of ``succeeded`` charges only;
* ``billing_notifies_total{result}``: inbound notifies (``NOTIFY_RESULTS``);
* ``billing_tick_item_failures_total{tick}``: items a tick could not work on (``TICKS``); each
  also has an ``item_failures`` row and an ``alert.tick_item_failed`` event;
* ``billing_notify_lag_seconds`` (histogram): notify receipt minus the attempt's send time
  (``sent_at``, else ``created_at``: the intent is committed immediately before the send), on the
  engine's clock, for payment notifies that were applied.

Gauges, read from the database at scrape time (``StoreCollector``), so they are right whichever
process changed the rows: ``billing_invoices_due``, ``billing_attempts_in_flight{state}``,
``billing_subscriptions{status}`` (``past_due`` and ``unpaid`` are the dunning states),
``billing_notifications_unapplied`` (acknowledged but not yet applied) and ``billing_db_up``
(0 when the scrape could not read the database; the other gauges are then absent).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from billing.clock import Clock, SystemClock
from billing.domain.invoices import InvoiceStatus
from billing.domain.payments import AttemptState
from billing.store.engine import Store
from billing.store.models import (
    IN_FLIGHT,
    SUBSCRIPTION_STATUSES,
    GatewayNotification,
    Invoice,
    PaymentAttempt,
    Subscription,
)

__all__ = ["CHARGE_OUTCOMES", "NOTIFY_RESULTS", "TICKS", "Metrics", "StoreCollector"]

log = logging.getLogger(__name__)

CHARGE_OUTCOMES = ("succeeded", "failed", "pending", "unknown", "failed_not_sent", "watched",
                   "duplicate")
NOTIFY_RESULTS = ("applied", "duplicate", "rejected", "discrepancy", "error")
TICKS = ("renew", "collect", "reconcile", "dunning", "outbox", "daily")
"""``error``: not stored (database unavailable, answered 503) or stored but applying failed."""

OTHER = "other"
LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 86400)
_CURRENCY = re.compile(r"[A-Z]{3}")


class Metrics:
    """The engine's metrics; pass ``store`` to also expose the database gauges at scrape time."""

    content_type = CONTENT_TYPE_PLAIN_0_0_4

    def __init__(self, store: Store | None = None, clock: Clock | None = None) -> None:
        self.registry = CollectorRegistry()
        self._warned: set[str] = set()
        self.charges = Counter("billing_charges", "Purchase attempts by outcome.",
                               ["outcome"], registry=self.registry)
        self.charged = Counter("billing_charged_amount_cents",
                               "Minor units charged successfully, by currency.",
                               ["currency"], registry=self.registry)
        self.notifies = Counter("billing_notifies", "Inbound gateway notifies by result.",
                                ["result"], registry=self.registry)
        self.lag = Histogram("billing_notify_lag_seconds",
                             "Notify receipt minus the attempt's send time (engine clock).",
                             buckets=LAG_BUCKETS, registry=self.registry)
        self.item_failures = Counter("billing_tick_item_failures",
                                     "Items a tick could not work on, by tick.", ["tick"],
                                     registry=self.registry)
        for tick in (*TICKS, OTHER):
            self.item_failures.labels(tick)
        for outcome in (*CHARGE_OUTCOMES, OTHER):
            self.charges.labels(outcome)
        for result in (*NOTIFY_RESULTS, OTHER):
            self.notifies.labels(result)
        if store is not None:
            self.registry.register(StoreCollector(store, clock or SystemClock()))

    def charge(self, outcome: str, amount: int, currency: str) -> None:
        """Count one attempt's outcome; ``amount`` (minor units) counts only when it succeeded."""
        self.charges.labels(self._known(outcome, CHARGE_OUTCOMES, "outcome")).inc()
        if outcome == AttemptState.SUCCEEDED and amount > 0:
            label = currency if _CURRENCY.fullmatch(currency) else OTHER
            self.charged.labels(label).inc(amount)

    def notify(self, result: str) -> None:
        """Count one inbound notify by what became of it (``NOTIFY_RESULTS``)."""
        self.notifies.labels(self._known(result, NOTIFY_RESULTS, "result")).inc()

    def notify_lag(self, seconds: float) -> None:
        """Observe one notify's lag; negative values (clocks moved by tests) are dropped."""
        if seconds >= 0:
            self.lag.observe(seconds)

    def tick_item_failed(self, tick: str) -> None:
        """Count one item a tick skipped after an error."""
        self.item_failures.labels(self._known(tick, TICKS, "tick")).inc()

    def exposition(self) -> bytes:
        """The Prometheus text format of this registry only."""
        return generate_latest(self.registry)

    def _known(self, value: str, allowed: Sequence[str], what: str) -> str:
        if value in allowed:
            return value
        if value not in self._warned:
            self._warned.add(value)
            log.warning("metrics: unexpected %s %r counted as %r", what, value[:40], OTHER)
        return OTHER


class StoreCollector(Collector):
    """Gauges computed from the database on every scrape; a failing database gives
    ``billing_db_up 0`` instead of a failed scrape."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        """Names only, so registering does not query the database."""
        return [_up(), *_families()]

    def collect(self) -> Iterable[Metric]:
        up = _up()
        try:
            families = self._read()
        except Exception as exc:  # a scrape must not fail because the database does
            log.warning("metrics: database gauges unavailable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]

    def _read(self) -> list[GaugeMetricFamily]:
        due, attempts, subs, unapplied = _families()
        at = self.clock.now()
        with self.store.sessions() as session:
            due.add_metric([], session.scalar(select(func.count(Invoice.id)).where(
                Invoice.status == InvoiceStatus.OPEN, Invoice.next_attempt_at <= at,
                Invoice.total > 0)) or 0)
            _by_label(attempts, IN_FLIGHT, session.execute(
                select(PaymentAttempt.state, func.count(PaymentAttempt.id))
                .where(PaymentAttempt.state.in_(IN_FLIGHT)).group_by(PaymentAttempt.state)))
            _by_label(subs, SUBSCRIPTION_STATUSES, session.execute(
                select(Subscription.status, func.count(Subscription.id))
                .group_by(Subscription.status)))
            unapplied.add_metric([], session.scalar(select(func.count(GatewayNotification.id))
                .where(GatewayNotification.processed_at.is_(None))) or 0)
            session.rollback()
        return [due, attempts, subs, unapplied]


def _up() -> GaugeMetricFamily:
    return GaugeMetricFamily("billing_db_up", "1 if the scrape could read the database.")


def _families() -> Iterator[GaugeMetricFamily]:
    yield GaugeMetricFamily("billing_invoices_due",
                            "Open invoices whose next attempt is due now.")
    yield GaugeMetricFamily("billing_attempts_in_flight",
                            "Payment attempts not yet final, by state.", labels=["state"])
    yield GaugeMetricFamily("billing_subscriptions", "Subscriptions by status.",
                            labels=["status"])
    yield GaugeMetricFamily("billing_notifications_unapplied",
                            "Notifies acknowledged and stored but not yet applied.")


def _by_label(family: GaugeMetricFamily, labels: Sequence[str],
              rows: Iterable[tuple[str, int]]) -> None:
    """Every known label gets a sample (0 if absent), so dashboards see no gaps."""
    counts = dict.fromkeys(labels, 0)
    for label, count in rows:
        counts[label] = count
    for label, count in counts.items():
        family.add_metric([label], count)
