"""The engine's commands as operators use them: simulate, events, and the daemon process."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from billing.sandbox import cards
from tests.cli.conftest import Run
from tests.cli.snapshots import meta

NOW = "2026-03-02T12:00:00Z"


def _customer_paying(run: Run, monkeypatch: pytest.MonkeyPatch, plan: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{cards.APPROVE}\n123\n"))
    assert run("--now", NOW, "cards", "add-direct", "cus_1", "--holder", "A", "--expiry",
               "1230").code == 0
    created = run("--now", NOW, "subscriptions", "create", "cus_1", plan, "--trial-days", "0",
                  "--json")
    assert created.code == 0, created.err
    return int(created.json()["id"])


def test_simulate_forecasts_months_and_changes_nothing(
    gw_run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = _customer_paying(gw_run, monkeypatch, "coffee-weekly")
    assert gw_run("--now", NOW, "run-once").code == 0
    before = gw_run("events", "--limit", "100000", "--json").json()
    forecast = gw_run("--now", NOW, "simulate", "--until", "2026-03-31",
                      "--json")
    assert forecast.code == 0, forecast.err
    rows = forecast.json()
    issued = [r for r in rows if r["what"] == "invoice.issued" and r["subscription"] == sub]
    assert [r["date"] for r in issued] == ["2026-03-09", "2026-03-16", "2026-03-23",
                                           "2026-03-30"]
    assert sum(r["what"] == "payment.succeeded" for r in rows) == 4
    assert gw_run("events", "--limit", "100000", "--json").json() == before
    relative = gw_run("--now", NOW, "simulate", "--until", "+29d", "--json")  # to 2026-03-31
    assert relative.code == 0
    assert [(r["date"], r["what"]) for r in relative.json()] == [(r["date"], r["what"])
                                                                for r in rows]
    bad = gw_run("simulate", "--until", "someday")
    assert bad.code == 2 and "--until must be a date" in bad.err


def test_events_filter_by_subscription_and_type(
    gw_run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = _customer_paying(gw_run, monkeypatch, "starter-monthly")
    assert gw_run("--now", NOW, "run-once").code == 0
    mine = gw_run("events", "--subscription", str(sub), "--json").json()
    assert {e["subscription"] for e in mine} == {sub}
    types = [e["type"] for e in mine]
    assert types.index("invoice.issued") < types.index("payment.succeeded")
    paid = gw_run("events", "--type", "invoice.paid", "--json").json()
    assert len(paid) == 1 and paid[0]["data"]["amount"] == 1900


def test_daemon_bills_then_stops_cleanly_on_sigterm(
    tmp_path: Path, plans_dir: Path, state_dir: Path
) -> None:
    """The quickstart: in a fresh clone, one command makes the sandbox's database, stores the
    example plans, and bills the demo customers."""
    shutil.copytree(plans_dir, tmp_path / "plans")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLING_", "IOTPAY_"))}
    env.update(BILLING_HTTP_PORT="0", BILLING_OUTBOX_DIR=str(tmp_path / "outbox"),
               BILLING_STATE_DIR=str(state_dir))
    started_at = datetime.now(UTC)
    proc = subprocess.Popen(
        [sys.executable, "-m", "billing", "daemon", "--sandbox", "--demo", "--tick-scale", "0.02"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list((tmp_path / "outbox").glob("*.eml"))) < 3:
            time.sleep(0.2)
        emails = sorted(p.name for p in (tmp_path / "outbox").glob("*.eml"))
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _out, err = proc.communicate(timeout=15)
        stopped_in = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert stopped_in < 10
    assert len(emails) >= 3 and any("payment_failed" in e for e in emails)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = [line["msg"] for line in lines]
    assert "daemon started" in messages and "daemon stopped" in messages
    collects = [line for line in lines if line.get("tick") == "collect"]
    assert collects and collects[0]["result"]["attempts"] >= 4
    assert "sandbox-secret-key" not in err and "6250947" not in err.replace("625094******", "")
    assert not (tmp_path / "billing.db").exists()
    facts = meta(f"sqlite:///{tmp_path / 'billing-sandbox.db'}")
    assert facts["gateway"] == "sandbox"
    assert started_at < datetime.fromisoformat(facts["last_run_at"]) < datetime.now(UTC)
    [mark] = [json.loads(p.read_text()) for p in state_dir.glob("*.json")]
    assert mark["installation_id"] == facts["installation_id"] and mark["attempt_id"] >= 4
