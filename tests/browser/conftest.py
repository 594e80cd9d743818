"""Browser fixtures: one headless Chromium per test session, a fresh page per test, and a
screenshot plus the page's HTML whenever a browser test fails.

Chromium is Debian's ``chromium`` package (``/usr/bin/chromium``, or ``BILLING_CHROMIUM``),
driven by Playwright's synchronous API; Playwright's own browser downloads are never used. A
missing browser is an error, not a skip, so CI can't go green without running these tests; a
developer who has no Chromium sets ``BILLING_BROWSER_TESTS=0`` to skip them on purpose.

Why plain fixtures and not the pytest-playwright plugin: the sync API runs its event loop in a
greenlet on the test's thread, which is fine next to the suite's threads (uvicorn, the sandbox,
aiosmtpd) but refuses to start inside a running asyncio loop; the plugin adds options and
fixtures the suite doesn't need. Under ``filterwarnings = error`` the browser is closed and the
driver stopped at the end of the session, so no unclosed-resource warning escapes.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from billing.clock import FixedClock
from billing.mail.smtp import SmtpTransport
from billing.metrics import Metrics
from billing.receiver import ReceiverServer, create_app
from billing.sandbox import DEFAULT_MERCHANT
from billing.sandbox.testing import running_sandbox
from billing.services.ports import Deps, EngineConfig
from billing.store.engine import Store
from tests.browser.artifacts import ARTIFACT_PAGE, artifacts_dir, save_artifacts
from tests.browser.chromium import SKIP_VARIABLE, browser_tests_disabled, launch_chromium
from tests.browser.harness import Inbox, Shop, SmtpServer
from tests.engine.harness import at

START = at("2026-01-15")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Playwright is imported lazily (inside ``launch_chromium``) so that a missing package is a clear
# one-line failure of the browser tests, not an import error that stops the whole suite.
PAGE_TIMEOUT_MS = 10_000
"""Longest wait for one navigation or element: a healthy flow takes well under a second."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``BILLING_BROWSER_TESTS=0`` skips the browser tests, and only that does."""
    if not browser_tests_disabled():
        return
    skip = pytest.mark.skip(reason=f"browser tests disabled by {SKIP_VARIABLE}=0")
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """The session's headless Chromium; fails every browser test if it can't start."""
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies or storage shared between tests)."""
    context = browser.new_context(viewport={"width": 900, "height": 700})
    try:
        tab = context.new_page()
        tab.set_default_timeout(PAGE_TIMEOUT_MS)
        request.node.stash[ARTIFACT_PAGE] = tab
        yield tab
    finally:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failed setup or call, save ``<test>.png`` and ``<test>.html`` of the test's page
    and name them in the report, while the page is still open (teardown comes after)."""
    report = yield
    tab = item.stash.get(ARTIFACT_PAGE, None)
    if report.failed and report.when in ("setup", "call") and tab is not None:
        saved = save_artifacts(tab, artifacts_dir(item.config), item.nodeid)
        report.sections.append(("browser artifacts", "\n".join(str(p) for p in saved)))
    return report


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
                                      mch_key=SecretStr(DEFAULT_MERCHANT.key), metrics=metrics)
            transport = SmtpTransport(SecretStr(smtp.url), timeout=10)
            with receiver:
                world = Shop(deps, sandbox, clock, receiver_url=receiver.url, smtp=transport,
                             inbox=inbox)
                world.apply_plans()
                yield world
            transport.close()
    finally:
        smtp.stop()
