"""``billing sandbox`` as a developer runs it: in the foreground, stopped by SIGTERM or Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
import requests

from billing.cli.app import main


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_runs_until_a_signal_then_exits_cleanly(sig: signal.Signals) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "billing", "sandbox", "--port", "0", "--seed", "1",
         "--error-500-rate", "1.0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/v3/", first)
        assert match, first
        with requests.Session() as s:
            health = s.get(match.group(1) + "/admin/health", timeout=5).json()
            faults = s.get(match.group(1) + "/admin/faults", timeout=5).json()
        assert health == {"ok": True, "merchants": ["10000701"]}
        assert faults["error500Rate"] == 1.0
        assert "sandbox-secret-key" not in first
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "sandbox stopped" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--merchant", "only-two:parts"], "a merchant is MCHID:MCHKEY:LOGINNAME"),
        (["--latency-ms", "999999"], "invalid fault settings: latencyMs"),
        (["--settle-after", "soon"], "--settle-after must be a whole number"),
    ],
)
def test_bad_flags_are_one_line_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "--port", "0", *args]) == 2
    assert message in capsys.readouterr().err
