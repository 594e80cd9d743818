"""Per-invocation state shared by commands: settings, the clock, output mode.

Commands ask for what they need (``settings()``, ``clock()``) so a command that needs no database
never opens one, and a user mistake in settings is reported only by commands that use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billing.bootstrap import Runtime, open_runtime
from billing.clock import Clock, FixedClock, SystemClock
from billing.settings import Settings, load_settings
from billing.store.engine import Store
from billing.store.migrate import require_current


@dataclass
class CliState:
    debug: bool = False
    now: datetime | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(**self.overrides)
        return self._settings

    def clock(self) -> Clock:
        return FixedClock(self.now) if self.now is not None else SystemClock()


STATE = CliState()


def reset_state() -> None:
    """Forget state between invocations of ``main`` in one process (tests call it repeatedly)."""
    global STATE
    STATE = CliState()


def state() -> CliState:
    return STATE


def open_store(*, require_schema: bool = True) -> Store:
    """The store named by the settings, checked to be migrated unless asked not to."""
    settings = state().settings()
    store = Store.open(settings.database_url, pool_size=settings.charge_concurrency)
    if require_schema:
        try:
            require_current(store.engine)
        except BaseException:
            store.close()
            raise
    return store


@contextmanager
def runtime(*, sandbox: bool = False) -> Iterator[Runtime]:
    """The wired engine for commands that talk to the gateway."""
    st = state()
    with open_runtime(st.settings(), st.clock(), sandbox=sandbox) as rt:
        yield rt
