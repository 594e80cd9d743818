"""``billing outbox list`` and ``billing outbox send``, run as an operator would."""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path

import pytest

from billing.clock import FixedClock
from billing.mail import message_id
from billing.store.engine import Store

from .conftest import Result, SmtpServer, queue

Run = Callable[..., Result]


def test_list_shows_pending_then_send_writes_eml_files_and_list_shows_them_sent(
    run_cli: Run, store: Store, clock: FixedClock, tmp_path: Path
) -> None:
    ids = queue(store, clock.now(), {"key": "pf:1"}, {"key": "ce:1", "template": "card_expiring"})
    now = (clock.now() + timedelta(seconds=1)).isoformat()

    listed = run_cli("outbox", "list", "--pending", "--json")
    assert listed.code == 0, listed.err
    assert [(r["id"], r["status"], r["label"]) for r in listed.json()] == [
        (ids[1], "pending", "pending"), (ids[0], "pending", "pending")]

    sent = run_cli("--now", now, "outbox", "send", "--json")
    assert sent.code == 0, sent.err
    assert sent.json() == {"sent": 2, "failed": 0, "remaining": 0}

    eml = tmp_path / "outbox" / f"{ids[0]}-payment_failed.eml"
    msg = email.message_from_bytes(eml.read_bytes(), policy=default_policy)
    assert msg["Message-ID"] == message_id("pf:1", "billing@example.com")
    assert msg["From"] == "billing@example.com"

    rows = run_cli("outbox", "list", "--all", "--json").json()
    assert [(r["template"], r["to"], r["label"]) for r in rows] == [
        ("card_expiring", "ann@example.com", "sent to file"),
        ("payment_failed", "ann@example.com", "sent to file")]
    assert run_cli("outbox", "list", "--pending", "--json").json() == []
    assert len(run_cli("outbox", "list", "--sent", "--json").json()) == 2


def test_send_uses_smtp_when_configured_and_the_table_says_so(
    run_cli: Run, store: Store, clock: FixedClock, smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    queue(store, clock.now(), {"key": "pf:1"})
    monkeypatch.setenv("BILLING_SMTP_URL", smtp_server.url())
    monkeypatch.setenv("BILLING_MERCHANT_EMAIL", "Maple & Co <billing@maple.example.com>")

    result = run_cli("outbox", "send")
    assert result.code == 0, result.err
    assert "sent 1 via SMTP, failed 0" in result.out
    assert smtp_server.inbox.messages[0]["From"] == "Maple & Co <billing@maple.example.com>"
    assert not (tmp_path / "outbox").exists()

    table = run_cli("outbox", "list")
    assert table.code == 0, table.err
    # rich wraps cells at the 80 columns of a captured terminal
    assert "sent via" in table.out and "smtp" in table.out and "2026-01-15" in table.out


def test_failing_messages_are_labelled_with_their_attempts(
    run_cli: Run, store: Store, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue(store, clock.now(), {"key": "pf:1"})
    monkeypatch.setenv("BILLING_SMTP_URL", "smtp://mailer:hunter2@127.0.0.1:1")
    result = run_cli("outbox", "send", "--json")
    assert result.code == 0 and result.json()["failed"] == 1
    (row,) = run_cli("outbox", "list", "--json").json()
    assert row["label"] == "failing (1 attempt)"
    assert "hunter2" not in row["last_error"] and "hunter2" not in result.out + result.err


def test_list_refuses_two_status_filters(run_cli: Run) -> None:
    result = run_cli("outbox", "list", "--pending", "--sent")
    assert result.code == 2 and "choose one of --pending, --sent, --all" in result.err
