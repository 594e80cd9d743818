"""What a failed browser test leaves behind: a full-page screenshot and the page's HTML.

They go to ``test-artifacts/browser/`` under the repository (gitignored), or to the folder in
``BILLING_TEST_ARTIFACTS``, named after the test's node id so a parametrised run keeps one pair
per backend.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

ARTIFACT_PAGE = pytest.StashKey["Page"]()
"""The page a test used, stashed on its item for the report hook."""
DIR_VARIABLE = "BILLING_TEST_ARTIFACTS"


def artifacts_dir(config: pytest.Config) -> Path:
    chosen = os.environ.get(DIR_VARIABLE)
    return Path(chosen) if chosen else config.rootpath / "test-artifacts" / "browser"


def artifact_name(nodeid: str) -> str:
    """``tests/browser/test_x.py::test_y[sqlite]`` -> ``test_x.py-test_y-sqlite``."""
    name = nodeid.rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:150]


def save_artifacts(page: Page, folder: Path, nodeid: str) -> list[Path]:
    """Save what ``page`` shows now; returns the files written. A page that is closed or crashed
    yields what could still be saved (never an exception that would hide the test's own)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = artifact_name(nodeid)
    shot, html = folder / f"{name}.png", folder / f"{name}.html"
    try:
        page.screenshot(path=shot, full_page=True, timeout=5_000)
    except Exception as exc:
        shot = folder / f"{name}.png.txt"
        shot.write_text(f"no screenshot: {exc}\n", encoding="utf-8")
    try:
        html.write_text(f"<!-- {page.url} -->\n{page.content()}", encoding="utf-8")
    except Exception as exc:
        html = folder / f"{name}.html.txt"
        html.write_text(f"no HTML: {exc}\n", encoding="utf-8")
    return [shot, html]
