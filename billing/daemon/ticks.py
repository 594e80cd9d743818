"""Every tick of the engine, in one registry, and one pass of all of them as of one instant.

``TICKS`` is the only list of ticks: the daemon schedules each at its ``every``, and ``run_once``
runs them in order. Each tick reads the clock once and passes that instant down (``at``), claims
its rows in the database, and is idempotent: running it twice, or in two processes at once, does
no harm. The order of a pass matters only for promptness: renewals issue invoices, collection
charges them, reconciliation resolves unknown outcomes, dunning escalates, the outbox sends what
all of them queued. If dunning asked for a last try before a final action, collection and
dunning run again.

An item a tick cannot work on (one subscription, invoice, attempt...) is recorded and backed off
inside the tick (``billing.services.isolation``) and listed in the tick's ``failed``; a tick that
cannot run at all (the database is down) is caught here, so the other ticks of the pass still
run, and reported in ``PassReport.errors``.

``report`` (the merchant's report emails, ``billing.reports.schedule``) is the daemon's alone:
a pass leaves it out, so a pass and ``billing simulate`` stay about billing; under cron,
``billing report --scheduled`` runs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from billing.mail import Transport
from billing.reports.schedule import ReportTickSummary, configured_schedule, queue_due_reports
from billing.services.cards import ExpiringSummary, notify_expiring_cards
from billing.services.collection import CollectSummary, collect_due
from billing.services.dunning import DunningSummary, run_dunning
from billing.services.emails import TrialSummary, queue_trial_endings
from billing.services.idempotency import purge_expired as purge_idempotency_keys
from billing.services.isolation import ItemError
from billing.services.outbox import OutboxSummary, send_pending
from billing.services.ports import Deps
from billing.services.reconcile import ReconcileSummary, reconcile
from billing.services.renewal import RenewSummary, renew_due
from billing.services.webhooks import WebhookSummary, deliver_due

log = logging.getLogger(__name__)
RETRY_ROUNDS = 3


@dataclass(frozen=True)
class TickContext:
    """What a tick may need besides its dependencies."""

    at: datetime | None = None
    stop: threading.Event | None = None
    transport: Transport | None = None


@dataclass(frozen=True)
class Tick:
    name: str
    every: float
    """Seconds between runs in the daemon."""
    run: Callable[[Deps, TickContext], Any]


def send_outbox(deps: Deps, transport: Transport) -> OutboxSummary:
    return send_pending(deps.store, transport, deps.clock, worker=deps.config.worker,
                        sender=deps.config.merchant_email)


def _outbox(deps: Deps, ctx: TickContext) -> OutboxSummary | None:
    return None if ctx.transport is None else send_outbox(deps, ctx.transport)


def _report(deps: Deps, ctx: TickContext) -> ReportTickSummary:
    return queue_due_reports(deps.store, configured_schedule(), at=ctx.at or deps.clock.now())


TICKS: tuple[Tick, ...] = (
    Tick("renew", 30, lambda deps, ctx: renew_due(deps, at=ctx.at)),
    Tick("collect", 5, lambda deps, ctx: collect_due(deps, at=ctx.at, stop=ctx.stop)),
    Tick("reconcile", 30, lambda deps, ctx: reconcile(deps, at=ctx.at, stop=ctx.stop)),
    Tick("dunning", 60, lambda deps, ctx: run_dunning(deps, at=ctx.at)),
    Tick("outbox", 10, _outbox),
    Tick("daily", 3600, lambda deps, ctx: notify_expiring_cards(deps, at=ctx.at)),
    Tick("report", 600, _report),
    Tick("webhooks", 10, lambda deps, ctx: deliver_due(deps.store, deps.clock, at=ctx.at,
                                                       worker=deps.config.worker)),
    Tick("trials", 3600, lambda deps, ctx: queue_trial_endings(deps, at=ctx.at)),
    # The merchant JSON API: Idempotency-Keys older than 24 hours (also purged on insert).
    Tick("idempotency", 3600, lambda deps, ctx: purge_idempotency_keys(
        deps.store, ctx.at or deps.clock.now())),
)
BY_NAME = {tick.name: tick for tick in TICKS}


def failures_of(result: Any) -> list[ItemError]:
    """The items a tick's summary reports as failed (none for summaries without the field)."""
    failed = getattr(result, "failed", None)
    return list(failed) if isinstance(failed, list) else []


@dataclass
class PassReport:
    """What one pass did, for the per-run summary log line and ``--json``."""

    at: str
    renew: RenewSummary = field(default_factory=RenewSummary)
    collect: list[CollectSummary] = field(default_factory=list)
    reconcile: ReconcileSummary = field(default_factory=ReconcileSummary)
    dunning: list[DunningSummary] = field(default_factory=list)
    expiring: ExpiringSummary = field(default_factory=ExpiringSummary)
    outbox: OutboxSummary | None = None
    webhooks: WebhookSummary | None = None
    trials: TrialSummary = field(default_factory=TrialSummary)
    errors: dict[str, str] = field(default_factory=dict)
    """Ticks that could not run at all, with why."""

    @property
    def failed_items(self) -> list[ItemError]:
        results: list[Any] = [self.renew, *self.collect, self.reconcile, *self.dunning,
                              self.expiring]
        return [f for r in results for f in failures_of(r)]

    def summary(self) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        for c in self.collect:
            for state, n in c.outcomes.items():
                outcomes[state] = outcomes.get(state, 0) + n
        return {
            "at": self.at,
            "invoices_issued": self.renew.invoices,
            "subscriptions_still_behind": self.renew.behind,
            "charges": outcomes,
            "reconciled": dict(self.reconcile.outcomes),
            "notifications_applied": self.reconcile.notifications,
            "refunds_checked": self.reconcile.refunds,
            "dunning_moves": sum(d.moves for d in self.dunning),
            "expiring_card_notices": self.expiring.queued,
            "trial_ending_notices": self.trials.queued,
            "emails": asdict(self.outbox) if self.outbox else None,
            "webhooks": asdict(self.webhooks) if self.webhooks else None,
            "failed_items": [asdict(f) for f in self.failed_items],
            "failed_ticks": dict(self.errors),
        }


def _run(report: PassReport, tick: Tick, deps: Deps, ctx: TickContext) -> Any:
    """One tick of a pass; a tick that raises is reported, and the pass goes on."""
    try:
        return tick.run(deps, ctx)
    except Exception as exc:
        log.exception("tick %s could not run", tick.name)
        report.errors[tick.name] = f"{type(exc).__name__}: {exc}"[:300]
        return None


def run_once(deps: Deps, *, transport: Transport | None = None, at: datetime | None = None,
             stop: threading.Event | None = None) -> PassReport:
    """One pass of every tick as of ``at`` (default: the clock, read once)."""
    at = at or deps.clock.now()
    ctx = TickContext(at, stop, transport)
    report = PassReport(at=at.isoformat())
    report.renew = _run(report, BY_NAME["renew"], deps, ctx) or report.renew
    _collect(report, deps, ctx)
    report.reconcile = _run(report, BY_NAME["reconcile"], deps, ctx) or report.reconcile
    _dunn(report, deps, ctx)
    for _ in range(RETRY_ROUNDS):
        if not report.dunning or not report.dunning[-1].moves or (
                stop is not None and stop.is_set()):
            break
        _collect(report, deps, ctx)
        _dunn(report, deps, ctx)
    report.expiring = _run(report, BY_NAME["daily"], deps, ctx) or report.expiring
    report.trials = _run(report, BY_NAME["trials"], deps, ctx) or report.trials
    report.outbox = _run(report, BY_NAME["outbox"], deps, ctx)
    report.webhooks = _run(report, BY_NAME["webhooks"], deps, ctx)
    return report


def _collect(report: PassReport, deps: Deps, ctx: TickContext) -> None:
    result = _run(report, BY_NAME["collect"], deps, ctx)
    if result is not None:
        report.collect.append(result)


def _dunn(report: PassReport, deps: Deps, ctx: TickContext) -> None:
    result = _run(report, BY_NAME["dunning"], deps, ctx)
    if result is not None:
        report.dunning.append(result)
