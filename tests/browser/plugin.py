"""The browser as a pytest plugin: one headless Chromium per test package (``tests/browser``),
a fresh page per test, and a screenshot plus the page's HTML whenever a test that used a page
fails.

``tests/browser/conftest.py`` pulls these in; being a module of its own, it can also be loaded
with ``-p tests.browser.plugin``, which is how ``test_plugin.py`` runs failing tests in a child
pytest to prove that artifacts are written and that a missing Chromium fails rather than skips.

Chromium is Debian's ``chromium`` package (``/usr/bin/chromium``, or ``BILLING_CHROMIUM``),
driven by Playwright's synchronous API; Playwright's own browser downloads are never used. A
missing browser is an error, not a skip, so CI can't go green without running these tests; a
developer who has no Chromium sets ``BILLING_BROWSER_TESTS=0`` to skip them on purpose.

Why plain fixtures and not the pytest-playwright plugin: the sync API runs its event loop in a
greenlet on the test's own thread. That sits well beside the suite's server threads (uvicorn,
the sandbox, aiosmtpd), but it refuses to start inside a running asyncio loop, so browser tests
stay plain ``def`` tests; the plugin would add options, fixtures and an event-loop policy the
suite doesn't need. While Playwright runs, it marks its loop as the main thread's running loop
between calls, so ``asyncio.run()`` anywhere else on that thread would fail: the browser is
therefore package-scoped, stopped once the last browser test is done, not kept to the end of the
session where it would break any later test that uses asyncio (a plugin-loaded test outside a
package, like ``test_plugin.py``'s probes, gets it for the session, which is all it has).
Under ``filterwarnings = error`` every context is closed after its test and the browser and
driver with the package, so no unclosed-resource warning escapes.
Playwright is imported only inside ``launch_chromium``: a missing package fails the browser
tests with one line instead of breaking the collection of the whole suite.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.artifacts import ARTIFACT_PAGE, artifacts_dir, save_artifacts
from tests.browser.chromium import SKIP_VARIABLE, browser_tests_disabled, launch_chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PAGE_TIMEOUT_MS = 10_000
"""Longest wait for one navigation or element: a healthy flow takes well under a second."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``BILLING_BROWSER_TESTS=0`` skips the tests that need the browser, and only that does."""
    if not browser_tests_disabled():
        return
    skip = pytest.mark.skip(reason=f"browser tests disabled by {SKIP_VARIABLE}=0")
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """The package's headless Chromium; fails every browser test if it can't start."""
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
