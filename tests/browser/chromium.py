"""Start Debian's Chromium under Playwright, or say in one line why it can't be started.

The browser is the system's (``apt-get install chromium``), never one that Playwright downloads:
this machine, developers' and CI's reach package registries only. ``BILLING_CHROMIUM`` points at
another binary; ``BILLING_BROWSER_TESTS=0`` is the only way to skip the browser tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SKIP_VARIABLE = "BILLING_BROWSER_TESTS"
PATH_VARIABLE = "BILLING_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
HOW_TO_GET_IT = (f"install it with `apt-get install chromium` (Debian's package), point "
                 f"{PATH_VARIABLE} at a Chromium binary, or set {SKIP_VARIABLE}=0 to skip "
                 f"the browser tests")
# Root can't use Chromium's setuid/namespace sandbox in a container; the pages under test are
# our own, served on loopback, so the sandbox protects nothing here.
LAUNCH_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]


def browser_tests_disabled() -> bool:
    return os.environ.get(SKIP_VARIABLE, "").strip() == "0"


def chromium_path() -> Path:
    return Path(os.environ.get(PATH_VARIABLE) or DEFAULT_CHROMIUM)


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """A headless Chromium for the block; ``pytest.fail`` (not skip) if there is none."""
    executable = chromium_path()
    if not (executable.is_file() and os.access(executable, os.X_OK)):
        pytest.fail(f"Chromium not found at {executable}: {HOW_TO_GET_IT}", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'", pytrace=False)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(executable),
                                                 headless=True, args=LAUNCH_ARGS)
        except Exception as exc:  # Playwright's Error: the binary ran and died; say how
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            pytest.fail(f"Chromium at {executable} did not start ({first}): {HOW_TO_GET_IT}",
                        pytrace=False)
        try:
            yield browser
        finally:
            browser.close()
