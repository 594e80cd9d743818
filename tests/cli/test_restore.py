"""A database restored behind the gateway is refused until an operator accepts it: the
high-water mark in BILLING_STATE_DIR knows payments the backup does not."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from billing.sandbox import cards
from billing.sandbox.server import SandboxServer
from billing.store.engine import Store
from billing.store.models import PaymentAttempt
from billing.store.uow import UnitOfWork
from tests.cli.conftest import Run
from tests.cli.snapshots import backup, drop_copy, everything, meta, restore

PURCHASE = "cc_purchasewithtoken"


@pytest.fixture
def backups(pg_server_url: str) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for copy in made:
        drop_copy(pg_server_url, copy)


def _subscribe(run: Run, monkeypatch: pytest.MonkeyPatch, customer: str) -> int:
    if customer != "cus_1":
        assert run("customers", "add", customer, "--email", f"{customer}@example.com",
                   "--name", customer).code == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{cards.APPROVE}\n123\n"))
    assert run("cards", "add-direct", customer, "--holder", "A", "--expiry", "1230").code == 0
    created = run("subscriptions", "create", customer, "starter-monthly", "--trial-days", "0",
                  "--json")
    assert created.code == 0, created.err
    return int(created.json()["id"])


def _invoices(run: Run, sub: int) -> list[str]:
    return [i["status"] for i in run("subscriptions", "show", str(sub), "--json").json()[
        "invoices"]]


def test_a_database_restored_behind_its_mark_is_refused_until_the_restore_is_accepted(
    gw_run: Run, db_url: str, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, state_dir: Path, pg_server_url: str, backups: list[str],
) -> None:
    first = _subscribe(gw_run, monkeypatch, "cus_1")
    assert gw_run("run-once").code == 0
    assert _invoices(gw_run, first) == ["paid"]
    copy = backup(db_url, pg_server_url, tmp_path)  # last night's backup
    backups.append(copy)
    second = _subscribe(gw_run, monkeypatch, "cus_2")
    assert gw_run("run-once").code == 0  # charged after the backup
    assert _invoices(gw_run, second) == ["paid"]
    installation = meta(db_url)["installation_id"]
    mark = json.loads((state_dir / f"{installation}.json").read_text())
    assert mark["attempt_id"] == 2 and mark["order"]

    restored = restore(db_url, copy)
    monkeypatch.setenv("BILLING_DATABASE_URL", restored)
    # the backup knows nothing of cus_2's subscription, nor of the payment the gateway took
    assert [s["id"] for s in gw_run("subscriptions", "list", "--json").json()] == [first]
    charged = sandbox.request_count(PURCHASE)
    before = everything(restored)

    refused = gw_run("run-once")

    assert refused.code == 2
    assert len(refused.err.strip().splitlines()) == 1
    assert "looks restored from a backup" in refused.err
    assert "its newest payment attempt is #1, the mark's #2" in refused.err
    assert "charge again" in refused.err and "billing db accept-restore" in refused.err
    assert sandbox.request_count(PURCHASE) == charged
    assert everything(restored) == before
    assert gw_run("cards", "show", "cus_1").code == 2  # any command that talks to the gateway

    unconfirmed = gw_run("db", "accept-restore")  # no terminal to ask on: --yes is required
    assert unconfirmed.code == 2 and "pass --yes" in unconfirmed.err
    assert everything(restored) == before

    accepted = gw_run("db", "accept-restore", "--yes")
    assert accepted.code == 0, accepted.err
    assert "payment attempt #1" in accepted.out
    [event] = gw_run("events", "--type", "installation.", "--json").json()
    assert event["type"] == "installation.restore_accepted"
    assert event["data"]["previous"]["attempt_id"] == 2
    assert event["data"]["accepted"]["attempt_id"] == 1
    assert json.loads((state_dir / f"{installation}.json").read_text())["attempt_id"] == 1

    assert gw_run("run-once").code == 0
    assert gw_run("db", "accept-restore", "--yes").out.startswith("nothing to accept")


def test_a_database_without_the_marked_order_is_refused(
    gw_run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids alone can catch up after a restore; the newest order the mark saw must be there."""
    _subscribe(gw_run, monkeypatch, "cus_1")
    assert gw_run("run-once").code == 0
    store = Store.open(db_url)
    with UnitOfWork(store) as uow:
        uow.session.execute(update(PaymentAttempt).values(mch_order_no="OTHER-1"))
        uow.commit()
    store.close()
    refused = gw_run("run-once")
    assert refused.code == 2 and "it has no order" in refused.err


def test_an_unwritable_state_dir_stops_before_any_charge(
    gw_run: Run, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    sandbox: SandboxServer,
) -> None:
    _subscribe(gw_run, monkeypatch, "cus_1")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("BILLING_STATE_DIR", str(blocker / "state"))
    result = gw_run("run-once")
    assert result.code == 2 and "cannot create BILLING_STATE_DIR" in result.err
    assert sandbox.request_count(PURCHASE) == 0


def test_the_state_dir_defaults_to_the_xdg_state_home(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BILLING_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    shown = {v["name"]: v for v in run("config", "show", "--json").json()}
    assert shown["state_dir"]["value"] == str(tmp_path / "xdg" / "billing")
    monkeypatch.delenv("XDG_STATE_HOME")
    shown = {v["name"]: v for v in run("config", "show", "--json").json()}
    assert shown["state_dir"]["value"] == str(Path.home() / ".local" / "state" / "billing")
