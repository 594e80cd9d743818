"""Every tick of the engine, and one pass of all of them as of one instant.

Each tick reads the clock once and passes that instant down (``at``), claims its rows in the
database, and is idempotent: running it twice, or in two processes at once, does no harm. The
order of a pass matters only for promptness: renewals issue invoices, collection charges them,
reconciliation resolves unknown outcomes, dunning escalates, the outbox sends what all of them
queued. If dunning asked for a retry before an escalation, collection and dunning run again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from billing.mail import Transport
from billing.services.cards import notify_expiring_cards
from billing.services.collection import CollectSummary, collect_due
from billing.services.dunning import DunningSummary, run_dunning
from billing.services.outbox import OutboxSummary, send_pending
from billing.services.ports import Deps
from billing.services.reconcile import ReconcileSummary, reconcile
from billing.services.renewal import RenewSummary, renew_due

log = logging.getLogger(__name__)
RETRY_ROUNDS = 3


@dataclass
class PassReport:
    """What one pass did, for the per-run summary log line and ``--json``."""

    at: str
    renew: RenewSummary = field(default_factory=RenewSummary)
    collect: list[CollectSummary] = field(default_factory=list)
    reconcile: ReconcileSummary = field(default_factory=ReconcileSummary)
    dunning: list[DunningSummary] = field(default_factory=list)
    expiring_cards: int = 0
    outbox: OutboxSummary | None = None

    def summary(self) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        for c in self.collect:
            for state, n in c.outcomes.items():
                outcomes[state] = outcomes.get(state, 0) + n
        return {
            "at": self.at,
            "invoices_issued": self.renew.invoices,
            "charges": outcomes,
            "reconciled": dict(self.reconcile.outcomes),
            "notifications_applied": self.reconcile.notifications,
            "refunds_checked": self.reconcile.refunds,
            "dunning_moves": sum(d.moves for d in self.dunning),
            "expiring_card_notices": self.expiring_cards,
            "emails": asdict(self.outbox) if self.outbox else None,
        }


def send_outbox(deps: Deps, transport: Transport) -> OutboxSummary:
    return send_pending(deps.store, transport, deps.clock, worker=deps.config.worker,
                        sender=deps.config.merchant_email)


def run_once(deps: Deps, *, transport: Transport | None = None, at: datetime | None = None,
             stop: threading.Event | None = None) -> PassReport:
    """One pass of every tick as of ``at`` (default: the clock, read once)."""
    at = at or deps.clock.now()
    report = PassReport(at=at.isoformat())
    report.renew = renew_due(deps, at=at)
    report.collect.append(collect_due(deps, at=at, stop=stop))
    report.reconcile = reconcile(deps, at=at, stop=stop)
    report.dunning.append(run_dunning(deps, at=at))
    for _ in range(RETRY_ROUNDS):
        if not report.dunning[-1].moves or (stop is not None and stop.is_set()):
            break
        report.collect.append(collect_due(deps, at=at, stop=stop))
        report.dunning.append(run_dunning(deps, at=at))
    report.expiring_cards = notify_expiring_cards(deps, at=at)
    if transport is not None:
        report.outbox = send_outbox(deps, transport)
    return report
