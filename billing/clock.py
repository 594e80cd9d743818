"""Where "now" comes from: the only module allowed to read the wall clock.

Every rule in the engine takes ``at`` as an argument; services receive a ``Clock``. Tests and
operators (``billing --now``) pass a ``FixedClock`` and travel in time without sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from billing.domain.timeutil import require_aware


class Clock(Protocol):
    """Source of the current instant, always timezone-aware UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to; thread-safe so a daemon thread can share it."""

    def __init__(self, at: datetime) -> None:
        self._at = require_aware(at).astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        with self._lock:
            self._at = require_aware(at).astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._at = self._at + delta
