"""The browser plugin itself, run in a child pytest on probe tests written to a temporary
folder: a failing test leaves its screenshot and HTML and names them; without Chromium the
browser tests fail with one clear line; only ``BILLING_BROWSER_TESTS=0`` skips them; the
browser is stopped before tests outside its package run.

The child loads the plugin with ``-p tests.browser.plugin`` (or from a conftest, as
``tests/browser/conftest.py`` does) and the project's pytest settings (``filterwarnings = error``
included), so what it reports is what the suite would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.browser.artifacts import DIR_VARIABLE, artifact_name
from tests.browser.chromium import PATH_VARIABLE, SKIP_VARIABLE

ROOT = Path(__file__).resolve().parents[2]
PROBE = '''
def test_the_heading_is_wrong(page):
    page.set_content("<h1>Plan: coffee weekly</h1><p>18.50 CAD</p>")
    assert page.inner_text("h1") == "Plan: tea monthly"
'''


def run_pytest(tmp_path: Path, *paths: str, plugin: bool = True,
               **env: str) -> subprocess.CompletedProcess[str]:
    """A child pytest on ``paths`` with the project's settings and (unless ``plugin=False``,
    when a conftest imports it as ours does) the plugin; ``env`` on top of ours, less the
    browser variables unless given."""
    child_env = {k: v for k, v in os.environ.items()
                 if k not in (SKIP_VARIABLE, PATH_VARIABLE, DIR_VARIABLE)}
    child_env.setdefault(DIR_VARIABLE, str(tmp_path / "artifacts"))
    child_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", *(["-p", "tests.browser.plugin"] if plugin else []),
         "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), "-q", *paths],
        cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=120, check=False)


def run_probe(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The failing ``PROBE`` test, alone."""
    probe = tmp_path / "probe" / "test_probe.py"
    probe.parent.mkdir(exist_ok=True)
    probe.write_text(PROBE, encoding="utf-8")
    return run_pytest(tmp_path, str(probe), **env)


def test_a_failing_browser_test_leaves_a_screenshot_and_the_page_html(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts"
    child = run_probe(tmp_path, **{DIR_VARIABLE: str(folder)})
    assert child.returncode == 1, child.stdout + child.stderr
    assert "1 failed" in child.stdout
    name = artifact_name("probe/test_probe.py::test_the_heading_is_wrong")
    shot, html = folder / f"{name}.png", folder / f"{name}.html"
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and shot.stat().st_size > 1000
    assert "<h1>Plan: coffee weekly</h1>" in html.read_text(encoding="utf-8")
    assert "browser artifacts" in child.stdout  # the report names both files
    assert str(shot) in child.stdout and str(html) in child.stdout


def test_without_chromium_the_browser_tests_fail_with_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-chromium-here"
    child = run_probe(tmp_path, **{PATH_VARIABLE: str(missing)})
    assert child.returncode == 1, child.stdout + child.stderr
    assert "1 error" in child.stdout and "skipped" not in child.stdout
    assert f"Chromium not found at {missing}: install it with `apt-get install chromium`" in (
        child.stdout)
    assert "Traceback" not in child.stdout


def test_only_an_explicit_setting_skips_the_browser_tests(tmp_path: Path) -> None:
    child = run_probe(tmp_path, **{SKIP_VARIABLE: "0", PATH_VARIABLE: str(tmp_path / "none")})
    assert child.returncode == 0, child.stdout + child.stderr
    assert "1 skipped" in child.stdout and f"{SKIP_VARIABLE}=0" in child.stdout


def test_the_browser_is_gone_before_tests_outside_its_package_run(tmp_path: Path) -> None:
    """Playwright's sync API leaves its loop marked as running on the main thread; a later
    test's ``asyncio.run()`` must still work, so the browser ends with its package."""
    package = tmp_path / "a_browser"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "conftest.py").write_text(  # as tests/browser/conftest.py does
        "from tests.browser.plugin import browser, page, pytest_runtest_makereport\n\n"
        '__all__ = ["browser", "page", "pytest_runtest_makereport"]\n', encoding="utf-8")
    (package / "test_page.py").write_text(
        'def test_uses_the_browser(page):\n'
        '    page.set_content("<p>ok</p>")\n'
        '    assert page.inner_text("p") == "ok"\n', encoding="utf-8")
    later = tmp_path / "b_later"
    later.mkdir()
    (later / "test_asyncio.py").write_text(
        'import asyncio\n\n\n'
        'def test_asyncio_runs_on_the_main_thread():\n'
        '    assert asyncio.run(asyncio.sleep(0, result=7)) == 7\n', encoding="utf-8")
    child = run_pytest(tmp_path, str(package), str(later), plugin=False)
    assert child.returncode == 0, child.stdout + child.stderr
    assert "2 passed" in child.stdout
