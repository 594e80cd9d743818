"""The sandbox clock: wall time that operators and tests can move without waiting.

``ShiftedClock`` runs with the system clock plus an offset, so a sandbox left running keeps real
time while ``POST /admin/clock`` can jump it (to test same-day voids or a pending card settling).
Tests usually pass ``billing.clock.FixedClock`` instead, which only moves when told to. Both have
``set`` and ``advance``, which is all the sandbox asks (``SettableClock``).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Protocol

from billing.clock import Clock, SystemClock
from billing.domain.timeutil import to_utc

__all__ = ["SettableClock", "ShiftedClock"]


class SettableClock(Protocol):
    def now(self) -> datetime: ...

    def set(self, at: datetime) -> None: ...

    def advance(self, delta: timedelta) -> None: ...


class ShiftedClock:
    """``base.now() + offset``; thread-safe."""

    def __init__(self, base: Clock | None = None) -> None:
        self._base = base or SystemClock()
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._base.now() + self._offset

    def set(self, at: datetime) -> None:
        with self._lock:
            self._offset = to_utc(at) - self._base.now()

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._offset += delta
