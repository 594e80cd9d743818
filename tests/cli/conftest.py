"""Running the CLI in-process against a test database, as a user would from a shell."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from billing.cli.app import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


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
