"""Engine fixtures: a world per test on each backend, against the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billing.clock import FixedClock
from billing.sandbox.testing import running_sandbox
from billing.services.ports import Deps, EngineConfig
from billing.store.engine import Store
from tests.engine.harness import World, at

START = at("2026-01-15")


@pytest.fixture
def world(store: Store) -> Iterator[World]:
    clock = FixedClock(START)
    with running_sandbox(clock=clock) as sandbox, sandbox.client() as gateway:
        deps = Deps(store, gateway, clock,
                    EngineConfig(public_url="http://127.0.0.1:9", worker="test",
                                 charge_concurrency=4))
        w = World(deps, sandbox, clock)
        w.apply_plans()
        yield w
