"""Cards, charges, refunds and voids from the command line, against the sandbox over HTTP."""

from __future__ import annotations

import io
import logging
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from billing.sandbox import cards
from billing.sandbox.server import SandboxServer
from billing.store.engine import Store
from billing.store.models import Base
from billing.store.uow import UnitOfWork
from tests.cli.conftest import Run

NUMBER = cards.DECLINE_TWICE_THEN_APPROVE
CVV = "8642"


def _add_direct(run: Run, monkeypatch: pytest.MonkeyPatch, number: str = NUMBER) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{number}\n{CVV}\n"))
    added = run("cards", "add-direct", "cus_1", "--holder", "Ann Lee", "--expiry", "1230",
                "--json")
    assert added.code == 0, added.err
    assert "PCI DSS" in added.err
    return str(added.json()["card_id"])


def _every_stored_text(db_url: str) -> str:
    store = Store.open(db_url)
    try:
        with UnitOfWork(store) as uow:
            values = [str(v) for table in Base.metadata.sorted_tables
                      for row in uow.session.execute(select(table)) for v in row]
    finally:
        store.close()
    return "\n".join(values)


def test_add_direct_stores_and_logs_neither_card_number_nor_cvv(
    gw_run: Run, monkeypatch: pytest.MonkeyPatch, db_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    card_id = _add_direct(gw_run, monkeypatch)
    shown = gw_run("customers", "show", "cus_1", "--json").json()
    assert shown["cards"][0]["card_id"] == card_id
    assert shown["cards"][0]["number"] == "625094******0063"
    stored = _every_stored_text(db_url)
    assert NUMBER not in stored and CVV not in stored
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert NUMBER.encode() not in raw and CVV.encode() not in raw
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert NUMBER not in logged and CVV not in logged
    assert NUMBER not in caplog.text and CVV not in caplog.text


def test_card_number_never_comes_from_the_command_line(gw_run: Run) -> None:
    result = gw_run("cards", "add-direct", "cus_1", NUMBER, "--holder", "A", "--expiry", "1230")
    assert result.code == 2 and NUMBER not in result.err.replace("\n", "")


def test_hosted_card_page_is_printed_and_the_card_stays_pending(
    gw_run: Run, sandbox: SandboxServer
) -> None:
    result = gw_run("cards", "add", "cus_1", "--json")
    assert result.code == 0
    data = result.json()
    assert data["status"] == "pending"
    assert data["redirect_url"].startswith(f"{sandbox.root_url}/cc/addcard?key=")


def test_charge_query_refund_and_void(
    gw_run: Run, monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer
) -> None:
    _add_direct(gw_run, monkeypatch, cards.APPROVE)
    created = gw_run("subscriptions", "create", "cus_1", "pro-monthly", "--trial-days", "0",
                     "--json")
    assert created.code == 0, created.err
    assert gw_run("run-once").code == 0
    shown = gw_run("subscriptions", "show", str(created.json()["id"]), "--json").json()
    [invoice] = shown["invoices"]
    assert invoice["status"] == "paid" and invoice["total"] == "74.00 CAD"
    events = gw_run("events", "--type", "payment.succeeded", "--json").json()
    order = events[0]["data"]["mch_order_no"]
    queried = gw_run("charges", "query", order, "--json").json()
    assert queried["order"]["amount"] == 7400 and queried["order"]["status"] in (2, 3)
    missing = gw_run("charges", "query", "NO-SUCH-ORDER")
    assert missing.code == 2 and "no order" in missing.err

    too_much = gw_run("refund", invoice["number"], "--amount", "74.01")
    assert too_much.code == 2 and "refundable" in too_much.err
    part = gw_run("refund", invoice["number"], "--amount", "10.00", "--json").json()
    assert (part["state"], part["amount"]) == ("succeeded", "10.00 CAD")
    assert part["credit_note"].startswith("CN-")
    no_void = gw_run("void", invoice["number"])
    assert no_void.code == 2 and "partly refunded" in no_void.err
    rest = gw_run("refund", invoice["number"], "--json").json()
    assert rest["amount"] == "64.00 CAD" and rest["state"] == "succeeded"
    nothing_left = gw_run("refund", invoice["number"], "--amount", "0.01")
    assert nothing_left.code == 2
    order_info = sandbox.ledger().order(order) if hasattr(sandbox.ledger(), "order") else None
    if order_info is not None:
        assert order_info.refundable == 0


def test_void_on_the_day_of_the_payment(gw_run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    _add_direct(gw_run, monkeypatch, cards.APPROVE)
    created = gw_run("subscriptions", "create", "cus_1", "starter-monthly", "--trial-days", "0",
                     "--json").json()
    assert gw_run("run-once").code == 0
    shown = gw_run("subscriptions", "show", str(created["id"]), "--json").json()
    number = shown["invoices"][0]["number"]
    voided = gw_run("void", number, "--json")
    assert voided.code == 0, voided.err
    assert voided.json()["kind"] == "void" and voided.json()["state"] == "succeeded"


def _paid_invoice(gw_run: Run, monkeypatch: pytest.MonkeyPatch) -> str:
    _add_direct(gw_run, monkeypatch, cards.APPROVE)
    created = gw_run("subscriptions", "create", "cus_1", "starter-monthly", "--trial-days", "0",
                     "--json").json()
    assert gw_run("run-once").code == 0
    shown = gw_run("subscriptions", "show", str(created["id"]), "--json").json()
    return str(shown["invoices"][0]["number"])


@pytest.mark.parametrize("json_out", [False, True], ids=["table", "json"])
def test_a_void_the_gateway_refuses_exits_1_and_says_why(
    gw_run: Run, monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer, json_out: bool
) -> None:
    number = _paid_invoice(gw_run, monkeypatch)
    sandbox.clock.advance(timedelta(days=1))  # voids are same-day only
    voided = gw_run("void", number, *(["--json"] if json_out else []))
    assert voided.code == 1
    assert "void allowed only on the day of the payment" in voided.err
    if json_out:
        assert voided.json()["state"] == "failed"
    else:
        assert "Void failed" in voided.out
    assert voided.err.startswith("error: ") and len(voided.err.strip().splitlines()) == 1


def test_a_refund_that_could_not_be_sent_exits_1_and_says_nothing_was_refunded(
    gw_run: Run, monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer
) -> None:
    number = _paid_invoice(gw_run, monkeypatch)
    sandbox.stop()  # its port now refuses connections: the request can't be sent
    refunded = gw_run("refund", number, "--amount", "1.00", "--json")
    assert refunded.code == 1
    assert refunded.json()["state"] == "failed_not_sent"
    assert "not sent" in refunded.err and "nothing was refunded" in refunded.err


def test_a_refund_whose_outcome_is_unknown_exits_0_and_points_at_reconciliation(
    gw_run: Run, monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer
) -> None:
    number = _paid_invoice(gw_run, monkeypatch)
    sandbox.set_faults(drop_after_charge_rate=1.0, endpoints=("cc_refund",))
    refunded = gw_run("refund", number, "--amount", "1.00", "--json")
    assert refunded.code == 0, refunded.err
    assert refunded.json()["state"] == "unknown"
    assert "reconciliation" in refunded.err and "error" not in refunded.err
