"""Sandbox data apart from real data: ``--sandbox`` has its own database, and a database only
ever talks to the gateway that vaulted its cards."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from billing.sandbox import cards
from billing.store.engine import Store
from billing.store.models import Meta
from billing.store.uow import UnitOfWork
from tests.cli.conftest import Run
from tests.cli.snapshots import everything, meta


def _real_customer_owing(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """cus_1 with a card vaulted at the (real) gateway and an invoice due now."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{cards.APPROVE}\n123\n"))
    assert run("cards", "add-direct", "cus_1", "--holder", "A", "--expiry", "1230").code == 0
    created = run("subscriptions", "create", "cus_1", "starter-monthly", "--trial-days", "0")
    assert created.code == 0, created.err


@pytest.mark.parametrize("made", ["marked", "before marks"])
def test_run_once_sandbox_on_a_database_with_real_cards_is_refused_and_changes_nothing(
    gw_run: Run, monkeypatch: pytest.MonkeyPatch, db_url: str, made: str, tmp_path: Path,
) -> None:
    _real_customer_owing(gw_run, monkeypatch)
    if made == "before marks":  # a database from before databases were marked
        store = Store.open(db_url)
        with UnitOfWork(store) as uow:
            row = uow.session.get(Meta, "gateway")
            assert row is not None and row.value.startswith("iotpay 10000701 http://")
            uow.session.delete(row)
            uow.commit()
        store.close()
    before = everything(db_url)

    result = gw_run("run-once", "--sandbox")  # BILLING_DATABASE_URL still names it

    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    if made == "marked":
        assert "belongs to IOTPay merchant 10000701 at http://127.0.0.1:" in result.err
        assert "not the in-process sandbox (--sandbox)" in result.err
    else:
        assert "holds 1 card(s) vaulted elsewhere" in result.err
    assert "leave BILLING_DATABASE_URL unset" in result.err
    assert everything(db_url) == before  # no attempt, no event, no email, no mark
    assert not list(tmp_path.glob("outbox*/*.eml"))
    assert not (tmp_path / "billing-sandbox.db").exists()


def test_a_sandbox_database_refuses_the_real_gateway(
    run_db: Run, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_db("run-once", "--sandbox").code == 0
    assert meta(db_url)["gateway"] == "sandbox"
    before = everything(db_url)
    monkeypatch.setenv("IOTPAY_BASE_URL", "http://127.0.0.1:9/v3/")
    monkeypatch.setenv("IOTPAY_MCH_ID", "10000701")
    monkeypatch.setenv("IOTPAY_MCH_KEY", "real-key")
    monkeypatch.setenv("IOTPAY_LOGIN_NAME", "shop")

    result = run_db("run-once")

    assert result.code == 2
    assert ("belongs to the in-process sandbox (--sandbox), not IOTPay merchant 10000701 at "
            "http://127.0.0.1:9/v3/") in result.err
    assert "real-key" not in result.err + result.out
    assert everything(db_url) == before


def test_another_real_gateway_is_refused_too(gw_run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    _real_customer_owing(gw_run, monkeypatch)
    monkeypatch.setenv("IOTPAY_MCH_ID", "20000002")
    result = gw_run("run-once")
    assert result.code == 2
    assert "belongs to IOTPay merchant 10000701" in result.err
    assert "not IOTPay merchant 20000002" in result.err


def test_run_once_sandbox_in_a_fresh_directory_makes_its_own_database(
    run: Run, tmp_path: Path, plans_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_PLANS_DIR", str(plans_dir))
    assert run("db", "upgrade").code == 0  # a real billing.db, set up and never used yet
    real = (tmp_path / "billing.db").read_bytes()

    result = run("run-once", "--sandbox", "--json")

    assert result.code == 0, result.err
    assert (tmp_path / "billing.db").read_bytes() == real
    assert not (tmp_path / "billing.db-wal").exists()
    sandbox_db = f"sqlite:///{tmp_path / 'billing-sandbox.db'}"
    assert meta(sandbox_db)["gateway"] == "sandbox"
    assert "last_run_at" in meta(sandbox_db)
    plans = run("--sandbox", "plans", "list", "--json").json()
    assert {p["code"] for p in plans} >= {"starter-monthly", "pro-annual", "coffee-weekly"}
    assert run("plans", "list", "--json").json() == []  # billing.db: still nothing in it


def test_every_command_reaches_the_sandbox_database_by_flag_or_environment(
    run: Run, tmp_path: Path, plans_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_PLANS_DIR", str(plans_dir))
    added = run("--sandbox", "customers", "add", "demo-1", "--email", "d@example.com",
                "--name", "D")
    assert added.code == 0, added.err
    monkeypatch.setenv("BILLING_SANDBOX", "1")
    assert [c["external_id"] for c in run("customers", "list", "--json").json()] == ["demo-1"]
    shown = {v["name"]: v for v in run("config", "show", "--json").json()}
    assert shown["database_url"]["value"] == "sqlite:///billing-sandbox.db"
    assert shown["database_url"]["source"] == "default with --sandbox"
    assert shown["outbox_dir"]["value"] == "outbox-sandbox"
    assert not (tmp_path / "billing.db").exists()  # the real database was never made


def test_a_test_card_added_through_the_sandbox_is_charged_by_a_later_sandbox_run(
    run: Run, plans_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command's in-process sandbox starts with an empty vault: the stored test cards are
    vaulted again, so a card added in one command still pays in the next."""
    monkeypatch.setenv("BILLING_PLANS_DIR", str(plans_dir))
    assert run("--sandbox", "customers", "add", "c1", "--email", "c@example.com",
               "--name", "C").code == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{cards.APPROVE}\n123\n"))
    assert run("--sandbox", "cards", "add-direct", "c1", "--holder", "C", "--expiry",
               "1230").code == 0
    sub = run("--sandbox", "subscriptions", "create", "c1", "starter-monthly", "--trial-days",
              "0", "--json").json()
    assert run("--sandbox", "run-once").code == 0
    shown = run("--sandbox", "subscriptions", "show", str(sub["id"]), "--json").json()
    assert [i["status"] for i in shown["invoices"]] == ["paid"]


def test_the_hosted_card_page_of_a_sandbox_that_stops_at_once_is_refused(
    run: Run, plans_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_PLANS_DIR", str(plans_dir))
    assert run("--sandbox", "customers", "add", "c1", "--email", "c@example.com",
               "--name", "C").code == 0
    result = run("--sandbox", "cards", "add", "c1")
    assert result.code == 2 and "cards add-direct" in result.err
    assert run("--sandbox", "customers", "show", "c1", "--json").json()["cards"] == []


def test_demo_needs_the_sandbox(run: Run) -> None:
    result = run("daemon", "--demo")
    assert result.code == 2 and "--demo needs --sandbox" in result.err
