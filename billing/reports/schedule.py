"""Scheduled reports: the previous month on the 1st, the previous week on Mondays (if asked).

``due_reports`` is pure: given an instant and the merchant's timezone it says which reports are
due *that local day*, each with the dedupe key that makes it happen once
(``report:monthly:2026-11``, ``report:weekly:2026-W47``). ``queue_due_reports`` is the
daemon's report tick (and ``billing report --scheduled`` for cron): for each due report not
yet in the outbox it builds the report and queues it. Several daemons may run it at once; the
outbox's unique dedupe key lets exactly one of them queue each report, the others find it
queued. A day on which the engine does not run at all sends nothing later; the report can
always be sent by hand (``billing report --email``).

>>> from datetime import UTC, datetime
>>> [d.key for d in due_reports(datetime(2026, 12, 1, 9, tzinfo=UTC), "America/Toronto", True)]
['report:monthly:2026-11']
>>> [d.key for d in due_reports(datetime(2026, 12, 7, 9, tzinfo=UTC), "America/Toronto", True)]
['report:weekly:2026-W49']
>>> due_reports(datetime(2026, 12, 1, 3, tzinfo=UTC), "America/Toronto", False)  # Nov 30 there
[]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from billing.domain.calendar import local_date
from billing.domain.timeutil import to_utc
from billing.reports.build import build_report
from billing.reports.delivery import enqueue_report, is_queued
from billing.reports.figures import Report
from billing.reports.period import (
    ReportRange,
    month_name,
    previous_month,
    previous_week,
    report_range,
)
from billing.settings import Settings, load_settings
from billing.store.engine import Store

Build = Callable[[Store, ReportRange], Report]


@dataclass(frozen=True)
class ReportSchedule:
    """Where and when scheduled reports go: the merchant's settings."""

    timezone: str
    recipient: str
    merchant: str
    weekly: bool = False

    @classmethod
    def of(cls, settings: Settings) -> ReportSchedule:
        return cls(settings.timezone, settings.merchant_email, settings.merchant_name,
                   settings.report_weekly)


def configured_schedule() -> ReportSchedule:
    """The schedule the settings describe (``BILLING_TIMEZONE``, ``BILLING_MERCHANT_EMAIL``,
    ``BILLING_REPORT_WEEKLY``...), read when the tick runs."""
    return ReportSchedule.of(load_settings())


@dataclass(frozen=True)
class DueReport:
    kind: str
    first: date
    last: date
    key: str
    title: str


def due_reports(at: datetime, timezone: str, weekly: bool) -> list[DueReport]:
    """The reports due on ``at``'s local date in ``timezone``."""
    today = local_date(to_utc(at), timezone)
    due = []
    if today.day == 1:
        first, last = previous_month(at, timezone)
        due.append(DueReport("monthly", first, last, f"report:monthly:{first:%Y-%m}",
                             f"monthly billing report, {month_name(first)}"))
    if weekly and today.weekday() == 0:
        first, last = previous_week(at, timezone)
        year, week, _ = first.isocalendar()
        due.append(DueReport("weekly", first, last, f"report:weekly:{year}-W{week:02d}",
                             f"weekly billing report, {first} to {last}"))
    return due


@dataclass
class ReportTickSummary:
    """Report emails this run queued (their dedupe keys); empty on most runs."""

    queued: list[str] = field(default_factory=list)


def queue_due_reports(store: Store, schedule: ReportSchedule, *, at: datetime,
                      build: Build = build_report) -> ReportTickSummary:
    """Queue every report due at ``at`` that is not in the outbox yet; idempotent."""
    summary = ReportTickSummary()
    for due in due_reports(at, schedule.timezone, schedule.weekly):
        if is_queued(store, due.key):
            continue
        report = build(store, report_range(due.first, due.last, schedule.timezone, at))
        if enqueue_report(store, report, to=schedule.recipient, merchant=schedule.merchant,
                          title=due.title, dedupe_key=due.key, at=at) is not None:
            summary.queued.append(due.key)
    return summary
