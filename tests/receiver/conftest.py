"""Fixtures for receiver tests: the real app on uvicorn, talking to a real sandbox.

The receiver's socket is bound first (``server``), so its URL is in ``deps.config.public_url``
before the app is built; the sandbox sends its notifies there. The sandbox shares the engine's
``FixedClock``, so moving one moves both. Teardown stops the receiver (waiting for background
applies), then the gateway client and the sandbox, then the store.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import requests
from pydantic import SecretStr

from billing.clock import FixedClock
from billing.gateway import IotpayClient, QueryRetry
from billing.metrics import Metrics
from billing.receiver import DEFAULT_MAX_BODY, ReceiverServer, create_app
from billing.sandbox import DEFAULT_MERCHANT, SandboxServer
from billing.sandbox.testing import running_sandbox
from billing.services.ports import Deps, EngineConfig
from billing.store.engine import Store

FAST_QUERY_RETRY = QueryRetry(attempts=3, base_delay=0.001, max_delay=0.004)
MAX_BODY = DEFAULT_MAX_BODY


@pytest.fixture
def sandbox(clock: FixedClock) -> Iterator[SandboxServer]:
    with running_sandbox(clock=clock) as server:
        yield server


@pytest.fixture
def gateway(sandbox: SandboxServer) -> Iterator[IotpayClient]:
    with sandbox.client(query_retry=FAST_QUERY_RETRY, rng=random.Random(0)) as client:
        yield client


@pytest.fixture
def server() -> Iterator[ReceiverServer]:
    """A receiver with its port reserved and no app yet."""
    server = ReceiverServer()
    server.bind()
    yield server
    server.stop()


@pytest.fixture
def deps(store: Store, gateway: IotpayClient, clock: FixedClock, server: ReceiverServer) -> Deps:
    return Deps(store, gateway, clock, EngineConfig(public_url=server.url))


@pytest.fixture
def metrics(deps: Deps) -> Metrics:
    return Metrics(deps.store, deps.clock)


@pytest.fixture
def receiver(server: ReceiverServer, deps: Deps, metrics: Metrics) -> ReceiverServer:
    """The receiver app for the sandbox's default merchant, listening."""
    server.app = create_app(deps, mch_id=DEFAULT_MERCHANT.mch_id,
                            mch_key=SecretStr(DEFAULT_MERCHANT.key), metrics=metrics,
                            max_body=MAX_BODY)
    return server.start()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
