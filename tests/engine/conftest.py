"""Engine fixtures: a world per test on each backend, against the sandbox over HTTP, with the
real notify receiver on uvicorn so the sandbox's signed notifies flow back into the engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from billing.clock import FixedClock
from billing.metrics import Metrics
from billing.receiver import ReceiverServer, create_app
from billing.sandbox import DEFAULT_MERCHANT
from billing.sandbox.testing import running_sandbox
from billing.services.ports import Deps, EngineConfig
from billing.store.engine import Store
from tests.engine.harness import World, at

START = at("2026-01-15")


@pytest.fixture
def world(store: Store) -> Iterator[World]:
    clock = FixedClock(START)
    receiver = ReceiverServer()
    receiver.bind()
    with running_sandbox(clock=clock) as sandbox, sandbox.client() as gateway:
        metrics = Metrics(store, clock)
        deps = Deps(store, gateway, clock,
                    EngineConfig(public_url=receiver.url, worker="test", charge_concurrency=4,
                                 mch_id=DEFAULT_MERCHANT.mch_id),
                    metrics=metrics)
        receiver.app = create_app(deps, mch_id=DEFAULT_MERCHANT.mch_id,
                                  mch_key=SecretStr(DEFAULT_MERCHANT.key), metrics=metrics)
        with receiver:
            w = World(deps, sandbox, clock)
            w.apply_plans()
            yield w
