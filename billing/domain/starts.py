"""Where billing begins for a subscription that starts in the past or is brought from elsewhere.

A start 30 months back used to issue 30 invoices that the next run charged at once. The rule now:
the calendar keeps the start's local date as its anchor (periods keep their days), but only the
period containing *now* is billed; the earlier ones are billed only when asked (``backfill``),
oldest first, and never more than ``MAX_BACKFILL`` of them. An imported subscription is anchored
on its paid-through date, so it may owe at most the one period that contains now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from billing.domain.calendar import BillingCalendar, local_date
from billing.domain.timeutil import to_utc
from billing.errors import InvalidInput

MAX_BACKFILL = 24
"""Past periods one backfill may bill: two years of a monthly plan. More is a data migration,
not a subscription, and charging it all on one day is a surprise to the customer."""

MAX_AHEAD = timedelta(days=366 * 5)
"""How far ahead a start or paid-through date may be; later is read as a typo (``2062``)."""


@dataclass(frozen=True)
class FirstBilling:
    """Which periods a new subscription bills when created at ``at``.

    ``current`` is the index of the period containing ``at`` (0 when the anchor is still ahead),
    ``first`` the first index invoiced; periods ``0 .. first - 1`` are never billed.
    """

    first: int
    current: int

    @property
    def skipped(self) -> int:
        return self.first

    @property
    def backfilled(self) -> int:
        return self.current - self.first


def first_billing(calendar: BillingCalendar, at: datetime, *, backfill: bool) -> FirstBilling:
    """The periods to bill for a subscription anchored on ``calendar.anchor``, created at ``at``.

    Worked example: anchored 2023-07-01 on a monthly plan and created 2026-01-15, the current
    period is index 30 (2026-01-01 to 2026-02-01): without backfill ``first`` is 30 and periods
    0-29 are skipped; with backfill it would be 0, but 30 past periods exceed ``MAX_BACKFILL``.
    """
    current = max(calendar.index_at(at), 0)
    if not backfill:
        return FirstBilling(current, current)
    if current > MAX_BACKFILL:
        earliest = calendar.boundary_date(current - MAX_BACKFILL)
        raise InvalidInput(
            f"backfilling would bill {current} past periods ({calendar.anchor} to "
            f"{calendar.boundary_date(current)}); at most {MAX_BACKFILL} can be billed at once, "
            f"so start on {earliest} or later")
    return FirstBilling(0, current)


def check_paid_through(calendar: BillingCalendar, at: datetime) -> int:
    """Check a paid-through date (the calendar's anchor); return how many periods bill at once.

    The anchor is the first day not yet paid, so the subscription owes period 0 once it starts.
    If period 1 has started as well, the customer is more than a period in arrears in the other
    system: importing would bill several periods on one day, which this refuses.
    """
    check_ahead(calendar.anchor, at, calendar.timezone)
    current = calendar.index_at(at)
    if current >= 1:
        raise InvalidInput(
            f"{calendar.anchor} is more than one period ({calendar.interval}) before today "
            f"({local_date(at, calendar.timezone)}): importing would bill {current + 1} periods "
            "at once; settle the arrears in the other system first, or give a later date")
    return current + 1


def check_ahead(day: date, at: datetime, tz: str, what: str = "") -> date:
    """Return local date ``day`` unless it is more than ``MAX_AHEAD`` after ``at`` in ``tz``."""
    latest = local_date(to_utc(at), tz) + MAX_AHEAD
    if day > latest:
        name = f"{what} " if what else ""
        raise InvalidInput(f"{name}{day} is more than 5 years ahead (after {latest}); a typo?")
    return day
