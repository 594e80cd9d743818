"""Browser test fixtures: the browser plugin's (``browser``, ``page``, screenshots on failure),
and ``shop``, the engine with every server a customer's browser talks to, on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from billing.api.context import ApiContext
from billing.clock import FixedClock
from billing.documents.merchant import Merchant
from billing.mail.smtp import SmtpTransport
from billing.metrics import Metrics
from billing.receiver import ReceiverServer, create_app
from billing.sandbox import DEFAULT_MERCHANT
from billing.sandbox.testing import running_sandbox
from billing.services.api_keys import create_api_key
from billing.services.ports import Deps, EngineConfig
from billing.store.engine import Store
from tests.api.conftest import Api
from tests.browser.harness import Inbox, Shop, SmtpServer
from tests.browser.plugin import (
    browser,
    page,
    pytest_collection_modifyitems,
    pytest_runtest_makereport,
)
from tests.engine.harness import at
from tests.webhooks.conftest import receiver

START = at("2026-01-15")
MERCHANT = Merchant(name="Maple Cloud", legal_name="Maple Cloud Inc.", address=("1 Main St",),
                    email="billing@example.com", logo=None, gst_hst_number=None, qst_number=None)

__all__ = ["browser", "page", "pytest_collection_modifyitems", "pytest_runtest_makereport",
           "receiver", "shop"]


@pytest.fixture
def shop(store: Store) -> Iterator[Shop]:
    """The engine on ``store`` with the sandbox, the notify receiver and an SMTP server, all
    over loopback HTTP/SMTP, the catalog applied, the clock at the engine tests' start."""
    clock = FixedClock(START)
    receiver = ReceiverServer()
    receiver.bind()
    inbox = Inbox()
    smtp = SmtpServer(inbox)
    smtp.start()
    try:
        with running_sandbox(clock=clock) as sandbox, sandbox.client() as gateway:
            metrics = Metrics(store, clock)
            deps = Deps(store, gateway, clock,
                        EngineConfig(public_url=receiver.url, worker="browser",
                                     mch_id=DEFAULT_MERCHANT.mch_id), metrics=metrics)
            receiver.app = create_app(deps, mch_id=DEFAULT_MERCHANT.mch_id,
                                      mch_key=SecretStr(DEFAULT_MERCHANT.key), metrics=metrics,
                                      api=ApiContext(deps, MERCHANT, "America/Toronto"))
            _, api_key = create_api_key(store, "browser-tests", clock.now())
            transport = SmtpTransport(SecretStr(smtp.url), timeout=10)
            with receiver:
                world = Shop(deps, sandbox, clock, receiver_url=receiver.url, smtp=transport,
                             inbox=inbox, api=Api(receiver.url, api_key))
                world.apply_plans()
                yield world
                world.api.close()
            transport.close()
    finally:
        smtp.stop()
