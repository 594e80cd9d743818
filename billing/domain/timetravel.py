"""When an operator's ``--now`` may stand for "now": the guard rails of time travel.

``--now`` lets an operator (or a test) act as of another instant. Reading the past or the future
is harmless; writing is not. A write dated before the database's last run or newest event
reorders its history (a renewal issued after the invoices it should precede, a lease taken
"before" it was granted), and a write dated in the future against the real gateway sends real
charges for periods that have not started. ``judge_now`` decides, from facts the caller reads
(the last run, the newest event, the wall clock, which gateway), whether an instant may be used
as now for a write; it reads nothing itself.

Worked examples (wall clock 2026-06-01T12:00Z, last run 2026-05-31T00:00Z, real gateway):

* 2026-06-01T12:03Z: allowed (the clock, give or take the tolerance);
* 2026-05-30T00:00Z: refused, before the last run;
* 2026-07-01T00:00Z: refused, in the future with the real gateway; allowed with the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billing.domain.timeutil import parse_duration, parse_instant
from billing.errors import InvalidInput

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No billing engine of this kind ran before; earlier instants are typos (``0001-01-01``)."""
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
"""Exclusive. Past it, catching a subscription up means millions of periods and, at year 9999,
dates that overflow; nobody bills in the year 3000 yet."""
FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far ahead of the wall clock a real-gateway ``--now`` may be: clocks of two machines
differ by seconds, not by minutes."""


def require_plausible(at: datetime) -> datetime:
    """Refuse instants no billing run can mean, before any work starts on them."""
    if not EARLIEST <= at < LATEST:
        raise InvalidInput(f"--now must be in the years {EARLIEST.year} to {LATEST.year - 1} "
                           f"(got {at.isoformat()})")
    return at


def parse_now(text: str, *, wall: datetime) -> datetime:
    """Parse a ``--now`` value: an ISO 8601 instant, or ``+DURATION`` ahead of ``wall``.

    The relative form (``+30d``, ``+2w``, ``+12h``) keeps examples and scripts true whatever
    day they are run on. Either form must be plausible (``require_plausible``).
    """
    raw = text.strip()
    if raw.startswith("+"):
        try:
            at = wall + parse_duration(raw[1:])
        except (ValueError, OverflowError) as exc:
            raise InvalidInput(f"--now {raw}: after the + the duration {exc}") from None
    else:
        at = parse_instant(raw)
    return require_plausible(at)


@dataclass(frozen=True)
class TimeFacts:
    """What the guard needs to know about the database and the world, read by the caller."""

    wall: datetime
    last_run: datetime | None
    newest_event: datetime | None
    sandbox: bool


@dataclass(frozen=True)
class NowVerdict:
    """Whether an instant may be used as now for a write; ``reason`` says why not."""

    allowed: bool
    reason: str = ""


def judge_now(at: datetime, facts: TimeFacts) -> NowVerdict:
    """May ``at`` be "now" for a command that writes, given ``facts``? (See the module doc.)

    Equal instants are allowed: two cron runs of one minute, or a retry of the same
    ``--now``, must not refuse each other.
    """
    shown = at.isoformat()
    if facts.last_run is not None and at < facts.last_run:
        return NowVerdict(False, f"--now {shown} is before this database's last run "
                                 f"({facts.last_run.isoformat()}); acting in the past would "
                                 "reorder its history: use a later --now, or none")
    if facts.newest_event is not None and at < facts.newest_event:
        return NowVerdict(False, f"--now {shown} is before this database's newest event "
                                 f"({facts.newest_event.isoformat()}); acting in the past would "
                                 "reorder its history: use a later --now, or none")
    if not facts.sandbox and at > facts.wall + FUTURE_TOLERANCE:
        return NowVerdict(False, f"--now {shown} is in the future (the clock says "
                                 f"{facts.wall.isoformat()}); against the real gateway that would "
                                 "charge periods that have not started: travel forward only "
                                 "with --sandbox")
    return NowVerdict(True)
