"""When a failed delivery is tried again, and when it is given up on: policy as data.

After the n-th failed try the delivery waits ``SCHEDULE[n-1]`` (1 m, 5 m, 30 m, 2 h, 6 h), then
``EVERY`` (12 h) for each later try, until the next try would fall more than ``GIVE_UP_AFTER``
(3 days) after the first one: then it is marked failed, and ``billing webhooks retry`` can queue it
again. A merchant's app that is down for a weekend still gets every event.

    >>> from datetime import UTC, datetime
    >>> first = datetime(2026, 1, 1, tzinfo=UTC)
    >>> next_attempt(first, 1, first)
    datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.timezone.utc)
    >>> next_attempt(first, 11, first + GIVE_UP_AFTER - timedelta(hours=1)) is None
    True
"""

from __future__ import annotations

from datetime import datetime, timedelta

SCHEDULE: tuple[timedelta, ...] = (
    timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=6),
)
EVERY = timedelta(hours=12)
GIVE_UP_AFTER = timedelta(days=3)


def delay_after(failures: int) -> timedelta:
    """The wait after the ``failures``-th failed try (counting from 1)."""
    return SCHEDULE[failures - 1] if 1 <= failures <= len(SCHEDULE) else EVERY


def next_attempt(first_try: datetime, failures: int, at: datetime) -> datetime | None:
    """When to try again after the ``failures``-th failure at ``at``; ``None``: give up."""
    later = at + delay_after(failures)
    return None if later > first_try + GIVE_UP_AFTER else later
