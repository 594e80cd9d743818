"""Running the CLI in-process against a test database, as a user would from a shell."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from billing.cli.app import main
from billing.sandbox.merchants import DEFAULT_MERCHANT
from billing.sandbox.server import SandboxServer
from billing.sandbox.testing import running_sandbox


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]
SETUP_AT = "2026-01-01T00:00:00Z"
"""When ``gw_run`` sets its world up: before every instant the tests act at."""


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("BILLING_CONFIG", "BILLING_DATABASE_URL", "IOTPAY_MCH_KEY", "BILLING_PLANS_DIR",
                 "BILLING_TIMEZONE", "BILLING_SMTP_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], cli_env: None) -> Run:
    def _run(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


@pytest.fixture
def run_db(run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run`` with BILLING_DATABASE_URL pointing at a migrated test database."""
    monkeypatch.setenv("BILLING_DATABASE_URL", db_url)
    return run


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        yield server


@pytest.fixture
def gw_run(run_db: Run, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch,
           plans_dir: Path) -> Run:
    """The CLI wired to the in-test sandbox, with the example catalog and one customer."""
    monkeypatch.setenv("IOTPAY_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("IOTPAY_MCH_ID", DEFAULT_MERCHANT.mch_id)
    monkeypatch.setenv("IOTPAY_MCH_KEY", DEFAULT_MERCHANT.key)
    monkeypatch.setenv("IOTPAY_LOGIN_NAME", DEFAULT_MERCHANT.login_name)
    monkeypatch.setenv("BILLING_PUBLIC_URL", "http://127.0.0.1:9")
    # set up before any test's --now, since writes may not go back in time
    assert run_db("--now", SETUP_AT, "plans", "apply", str(plans_dir)).code == 0
    assert run_db("--now", SETUP_AT, "customers", "add", "cus_1", "--email", "a@example.com",
                  "--name", "A").code == 0
    return run_db
