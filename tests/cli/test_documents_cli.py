"""``billing invoices``, ``billing credit-notes`` and ``billing explain`` as a user runs them."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from billing.sandbox import cards
from tests.cli.conftest import Run


def _paid_and_refunded(gw_run: Run, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{cards.APPROVE}\n123\n"))
    assert gw_run("cards", "add-direct", "cus_1", "--holder", "A", "--expiry", "1230").code == 0
    created = gw_run("subscriptions", "create", "cus_1", "starter-monthly", "--trial-days", "0",
                     "--json")
    assert created.code == 0, created.err
    assert gw_run("run-once").code == 0
    [listed] = gw_run("invoices", "list", "--json").json()
    refund = gw_run("refund", listed["number"], "--amount", "5.00", "--json").json()
    return str(listed["number"]), str(refund["credit_note"])


def test_list_show_and_render_an_invoice(gw_run: Run, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    number, note = _paid_and_refunded(gw_run, monkeypatch)
    listed = gw_run("invoices", "list", "--customer", "cus_1", "--status", "paid", "--json")
    assert [(i["number"], i["total"], i["amount_refunded"]) for i in listed.json()] == [
        (number, 1900, 500)]
    assert gw_run("invoices", "list", "--status", "open", "--json").json() == []
    shown = gw_run("invoices", "show", number, "--json").json()
    assert shown["payments"][0]["card"] == "625094******0014"
    assert shown["refunds"][0]["credit_note"] == note and shown["amount_due"] == 0
    table = gw_run("invoices", "show", number)
    assert table.code == 0 and shown["payments"][0]["mch_order_no"] in table.out
    pdf = tmp_path / "invoice.pdf"
    rendered = gw_run("invoices", "render", number, "--format", "pdf", "--output", str(pdf))
    assert rendered.code == 0, rendered.err
    text = "".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert number in text and "CA$19.00" in text and "A" in text
    txt = gw_run("invoices", "render", number, "--format", "txt", "--locale", "fr")
    assert txt.code == 0 and "FACTURE " + number in txt.out


def test_list_show_and_render_a_credit_note(gw_run: Run,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    number, note = _paid_and_refunded(gw_run, monkeypatch)
    [listed] = gw_run("credit-notes", "list", "--invoice", number, "--json").json()
    assert (listed["number"], listed["amount"], listed["kind"]) == (note, 500, "refund")
    shown = gw_run("credit-notes", "show", note, "--json").json()
    assert shown["invoice"]["number"] == number and shown["amount"] == 500
    html = gw_run("credit-notes", "render", note, "--format", "html")
    assert html.code == 0 and note in html.out and "CA$5.00" in html.out


def test_explain_prints_the_rule_chain_and_the_history(gw_run: Run,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    number, note = _paid_and_refunded(gw_run, monkeypatch)
    text = gw_run("explain", number)
    assert text.code == 0, text.err
    assert "plan starter-monthly v1, 19.00 CAD every 1 month" in text.out
    assert "no tax" in text.out and f"credit note {note}" in text.out
    assert "Now: paid by" in text.out
    data = gw_run("explain", number, "--json").json()
    assert data["invoice"] == number and data["amount"][-1]["data"]["total"] == 1900


@pytest.mark.parametrize("args,why", [
    (["invoices", "show", "INV-9999999"], "no invoice 'INV-9999999'"),
    (["credit-notes", "show", "CN-1"], "no credit note 'CN-1'"),
    (["explain", "nope"], "no invoice 'nope'"),
    (["invoices", "render", "INV-0000001", "--format", "docx"], "--format must be one of"),
    (["invoices", "list", "--from", "yesterday"], "--from must be a date like 2026-03-01"),
    (["invoices", "list", "--from", "2026-03-02", "--to", "2026-03-01"], "is before --from"),
    (["invoices", "list", "--status", "late"], "--status must be one of open, paid"),
    (["invoices", "list", "--customer", "nobody"], "no customer 'nobody'"),
])
def test_mistakes_are_one_line_and_exit_2(run_db: Run, args: list[str], why: str) -> None:
    result = run_db(*args)
    assert result.code == 2 and why in result.err and result.err.count("\n") == 1


def test_reading_documents_as_of_the_past_is_allowed(run_db: Run) -> None:
    """Listing and rendering write nothing, so any --now is fine for them."""
    result = run_db("--now", "2001-01-01T00:00:00Z", "invoices", "list", "--json")
    assert result.code == 0 and result.json() == []


def test_pay_link_prints_a_working_link_for_an_open_invoice_only(
        gw_run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from billing.bootstrap import engine_config
    from billing.cli.context import state
    from billing.services.links import invoice_of_pay_token

    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{cards.DECLINE_DO_NOT_HONOR}\n123\n"))
    assert gw_run("cards", "add-direct", "cus_1", "--holder", "A", "--expiry", "1230").code == 0
    assert gw_run("subscriptions", "create", "cus_1", "starter-monthly", "--trial-days",
                  "0").code == 0
    assert gw_run("run-once").code == 0
    [listed] = gw_run("invoices", "list", "--json").json()
    assert listed["status"] == "open"
    printed = gw_run("invoices", "pay-link", listed["number"].lower())
    assert printed.code == 0, printed.err
    url = printed.out.strip()
    config = engine_config(state().settings())
    assert url.startswith(config.public_url.rstrip("/") + "/billing/pay/")
    token = url.rsplit("/", 1)[1]
    assert invoice_of_pay_token(config, token, state().clock().now()) is not None

    missing = gw_run("invoices", "pay-link", "INV-9999999")
    assert missing.code == 2 and "no invoice 'INV-9999999'" in missing.err
    assert "Traceback" not in missing.err


def test_a_paid_invoice_has_no_pay_link(gw_run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    number, _ = _paid_and_refunded(gw_run, monkeypatch)
    refused = gw_run("invoices", "pay-link", number)
    assert refused.code == 2 and f"invoice {number} is paid: nothing to pay" in refused.err
