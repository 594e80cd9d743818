"""A February of billing, made once per backend through the real services against the sandbox.

Building the month takes a few seconds (about fifty simulated days), so it is built once per
backend and session: every report test reads the same database (tests may add outbox rows to it,
which no figure reads). ``scenario.py`` says what happens to whom.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from billing.clock import FixedClock
from billing.metrics import Metrics
from billing.receiver import ReceiverServer, create_app
from billing.reports import Report, build_report, report_range
from billing.sandbox import DEFAULT_MERCHANT
from billing.sandbox.testing import running_sandbox
from billing.services.ports import Deps, EngineConfig
from billing.store import migrate
from billing.store.engine import Store, make_engine
from tests.conftest import create_pg_database, drop_pg_database
from tests.engine.harness import World
from tests.reports.scenario import REPORT_AT, START, TIMEZONE, build_february


@contextmanager
def running_world(store: Store) -> Iterator[World]:
    """The engine tests' world (tests/engine/conftest.py) for a store that outlives one test."""
    clock = FixedClock(START)
    receiver = ReceiverServer()
    receiver.bind()
    with running_sandbox(clock=clock) as sandbox, sandbox.client() as gateway:
        metrics = Metrics(store, clock)
        deps = Deps(store, gateway, clock,
                    EngineConfig(public_url=receiver.url, worker="test", charge_concurrency=4,
                                 mch_id=DEFAULT_MERCHANT.mch_id), metrics=metrics)
        receiver.app = create_app(deps, mch_id=DEFAULT_MERCHANT.mch_id,
                                  mch_key=SecretStr(DEFAULT_MERCHANT.key), metrics=metrics)
        with receiver:
            world = World(deps, sandbox, clock)
            world.apply_plans()
            yield world


@contextmanager
def module_database(backend: str, request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of its own, for the session."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("february") / "billing.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    server: str = request.getfixturevalue("pg_server_url")
    url = create_pg_database(server, prefix="billing_report")
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:  # as the shared fixtures do: no prefix from the template
        conn.execute(text("DELETE FROM meta WHERE key IN ('order_prefix', 'installation_id')"))
    engine.dispose()
    try:
        yield url
    finally:
        drop_pg_database(server, url)


@dataclass(frozen=True)
class February:
    url: str
    store: Store
    report: Report
    numbers: dict[str, str]
    """Invoice numbers by the scenario's name for them (``ann.feb``, ``cat.proration``...)."""


@pytest.fixture(scope="session")
def february(backend: str, request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[February]:
    with module_database(backend, request, tmp_path_factory) as url:
        store = Store.open(url)
        try:
            with running_world(store) as world:
                numbers = build_february(world)
            rng = report_range(date(2026, 2, 1), date(2026, 2, 28), TIMEZONE, REPORT_AT)
            yield February(url, store, build_report(store, rng), numbers)
        finally:
            store.close()
