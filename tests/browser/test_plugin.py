"""The browser plugin itself, run in a child pytest on probe tests written to a temporary
folder: a failing test leaves its screenshot and HTML and names them; without Chromium the
browser tests fail with one clear line; only ``BILLING_BROWSER_TESTS=0`` skips them.

The child loads the plugin with ``-p tests.browser.plugin`` and the project's pytest settings
(``filterwarnings = error`` included), so what it reports is what the suite would.
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


def run_probe(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "probe" / "test_probe.py"
    probe.parent.mkdir(exist_ok=True)
    probe.write_text(PROBE, encoding="utf-8")
    child_env = {k: v for k, v in os.environ.items()
                 if k not in (SKIP_VARIABLE, PATH_VARIABLE, DIR_VARIABLE)}
    child_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.browser.plugin", "-p", "no:cacheprovider",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), "-q", str(probe)],
        cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=120, check=False)


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
    child = run_probe(tmp_path, **{PATH_VARIABLE: str(missing), DIR_VARIABLE: str(tmp_path)})
    assert child.returncode == 1, child.stdout + child.stderr
    assert "1 error" in child.stdout and "skipped" not in child.stdout
    assert f"Chromium not found at {missing}: install it with `apt-get install chromium`" in (
        child.stdout)
    assert "Traceback" not in child.stdout


def test_only_an_explicit_setting_skips_the_browser_tests(tmp_path: Path) -> None:
    child = run_probe(tmp_path, **{SKIP_VARIABLE: "0", PATH_VARIABLE: str(tmp_path / "none")})
    assert child.returncode == 0, child.stdout + child.stderr
    assert "1 skipped" in child.stdout and f"{SKIP_VARIABLE}=0" in child.stdout
