"""Per-invocation state shared by commands: settings, the clock, sandbox mode, output mode.

Commands ask for what they need (``settings()``, ``clock()``) so a command that needs no database
never opens one, and a user mistake in settings is reported only by commands that use them.

Two guards live here because they depend on the command line: ``--sandbox`` (root option,
``BILLING_SANDBOX=1``, or the engine commands' own flag) switches to the sandbox's own data
unless a database was named explicitly; and an explicit ``--now`` is checked against the
database's history (``billing.domain.timetravel``) by every command that writes, before it
writes. Whether a command writes is decided by name: every command not in ``READ_ONLY`` counts
as writing, so a new command is guarded until someone says it only reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billing.bootstrap import Runtime, open_runtime
from billing.clock import Clock, FixedClock, SystemClock
from billing.domain.timetravel import judge_now, parse_now
from billing.errors import InvalidInput
from billing.services.installation import prepare_sandbox_database, time_facts
from billing.settings import Settings, is_explicit, load_settings, with_sandbox_defaults
from billing.store.engine import Store
from billing.store.migrate import require_current

READ_ONLY = frozenset({
    "cards show", "charges query", "config show", "credit-notes list", "credit-notes render",
    "credit-notes show", "customers list", "customers show", "db current", "events", "explain",
    "invoices list", "invoices render", "invoices show", "outbox list", "plans diff",
    "plans list", "plans validate", "simulate", "subscriptions list", "subscriptions show",
})
"""Commands that change nothing, so any ``--now`` is fine for them (looking back is harmless)."""
HOSTED_PAGES = frozenset({"cards add"})
"""Commands whose result is a page the gateway serves afterwards: an in-process sandbox, which
stops with the command, cannot serve it."""


@dataclass
class CliState:
    debug: bool = False
    now: datetime | None = None
    sandbox: bool = False
    command: str = ""
    """The command being run, by name ("subscriptions list"); empty when not known."""
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None
    _sandbox_database: bool = False

    def use_sandbox(self) -> None:
        """Switch to the sandbox (an engine command's own ``--sandbox``): settings follow."""
        if not self.sandbox:
            self.sandbox, self._settings = True, None

    def settings(self) -> Settings:
        if self._settings is None:
            plain = load_settings(**self.overrides)
            self._sandbox_database = self.sandbox and not is_explicit(plain, "database_url")
            self._settings = with_sandbox_defaults(plain) if self.sandbox else plain
        return self._settings

    @property
    def sandbox_database(self) -> bool:
        """Whether the database is the sandbox's own default one, which may set itself up."""
        self.settings()
        return self._sandbox_database

    def clock(self) -> Clock:
        return FixedClock(self.now) if self.now is not None else SystemClock()

    def set_now(self, text: str) -> None:
        """Parse a ``--now`` value (see ``parse_now``); the wall clock anchors ``+30d``."""
        self.now = parse_now(text, wall=SystemClock().now())


STATE = CliState()


def reset_state() -> None:
    """Forget state between invocations of ``main`` in one process (tests call it repeatedly)."""
    global STATE
    STATE = CliState()


def state() -> CliState:
    return STATE


def command_writes() -> bool:
    """Whether the running command may change data (unknown: yes)."""
    return state().command not in READ_ONLY


def admit_now(store: Store) -> None:
    """Refuse an explicit ``--now`` that a writing command may not act as (``judge_now``)."""
    st = state()
    if st.now is None or not command_writes():
        return
    facts = time_facts(store, wall=SystemClock().now(), sandbox=st.sandbox)
    verdict = judge_now(st.now, facts)
    if not verdict.allowed:
        raise InvalidInput(verdict.reason)


def open_store(*, require_schema: bool = True, reading: bool = False) -> Store:
    """The store named by the settings, checked to be migrated unless asked not to.

    The sandbox's own database is created and given the example plans on first use; any other
    database must have been set up on purpose (``billing db upgrade``, ``billing plans apply``).
    ``reading``: this run of the command changes nothing, so any ``--now`` is fine (a command
    that only sometimes writes, such as ``report`` without ``--email``).
    """
    st = state()
    settings = st.settings()
    store = Store.open(settings.database_url, pool_size=settings.charge_concurrency)
    if require_schema:
        try:
            if st.sandbox_database:
                prepare_sandbox_database(store, st.clock(), settings.plans_dir)
            require_current(store.engine)
            if not reading:
                admit_now(store)
        except BaseException:
            store.close()
            raise
    return store


@contextmanager
def runtime(*, sandbox: bool = False) -> Iterator[Runtime]:
    """The wired engine for commands that talk to the gateway (``sandbox``: the command's own
    ``--sandbox`` flag, the same as the root one). When the command is done, the restore
    high-water mark takes in what it charged or refunded."""
    st = state()
    if sandbox:
        st.use_sandbox()
    if st.sandbox and st.command in HOSTED_PAGES:
        raise InvalidInput(f"`billing --sandbox {st.command}` would hand out a page of a sandbox "
                           "that stops with the command: add a test card with `billing --sandbox "
                           "cards add-direct` instead (docs/gateway.md)")
    with open_runtime(st.settings(), st.clock(), sandbox=st.sandbox,
                      prepare_sandbox=st.sandbox_database, admit=admit_now) as rt:
        yield rt
        rt.record_money()
