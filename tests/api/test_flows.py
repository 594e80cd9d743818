"""Each resource's happy path over real HTTP, against the sandbox gateway and the engine: the
merchant's integration as docs/api.md walks through it."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import requests
from pypdf import PdfReader

from billing.clock import FixedClock
from billing.daemon.ticks import run_once
from billing.receiver import ReceiverServer
from billing.sandbox import SandboxServer, cards
from billing.services.ports import Deps
from tests.api.conftest import Api, new_customer

CARD = {"number": cards.APPROVE, "cvv": "123", "expiry": "1230", "holder": "Ada Lovelace"}


def subscribed(api: Api, deps: Deps, plan: str = "starter-monthly") -> dict[str, Any]:
    """cus_1 with a card, subscribed without a trial, and the engine's pass run: paid."""
    new_customer(api, "cus_1")
    assert api.post("/v1/customers/cus_1/cards", json=CARD).status_code == 201
    created = api.post("/v1/subscriptions", json={"customer": "cus_1", "plan": plan,
                                                  "trial_days": 0})
    assert created.status_code == 201, created.text
    run_once(deps)
    sub: dict[str, Any] = created.json()
    return sub


def test_a_customer_is_created_fetched_and_listed(api: Api) -> None:
    made = new_customer(api, "cus_1", locale="fr", timezone="America/Vancouver",
                        province="BC")
    assert (made["locale"], made["timezone"], made["province"]) == ("fr",
                                                                    "America/Vancouver", "BC")
    assert api.get("/v1/customers/cus_1").json() == made
    assert api.get("/v1/customers").json()["data"] == [made]


def test_a_card_setup_returns_the_sandboxs_page_and_the_return_activates_the_card(
        api: Api, sandbox: SandboxServer, app_server: ReceiverServer) -> None:
    new_customer(api, "cus_1")
    response = api.post("/v1/customers/cus_1/card-setups")
    assert response.status_code == 201, response.text
    setup = response.json()
    hosted = setup["redirect_url"]
    assert hosted.startswith(f"{sandbox.root_url}/cc/addcard?key=")
    assert setup["card"]["status"] == "pending"
    # The customer fills in the hosted page; the gateway sends the browser back to the engine,
    # which asks cc_querycard before it believes anything: then the API shows the card active.
    with requests.Session() as browser:
        form = {"cardNum": cards.APPROVE, "expiryDate": "1230", "holder": "Ada", "cvv": "123"}
        back = browser.post(hosted, data=form, allow_redirects=False, timeout=10)
        assert back.headers["location"].startswith(f"{app_server.url}/iotpay/return/addcard?")
        assert browser.get(back.headers["location"], timeout=10).status_code == 200
    [card] = api.get("/v1/customers/cus_1/cards").json()["data"]
    assert card["card_id"] == setup["card"]["card_id"]
    assert (card["status"], card["number"]) == ("active", "625094******0014")


def test_a_direct_card_is_vaulted_masked_and_can_be_removed(api: Api) -> None:
    new_customer(api, "cus_1")
    response = api.post("/v1/customers/cus_1/cards", json=CARD)
    assert response.status_code == 201, response.text
    card = response.json()
    assert card["status"] == "active" and card["number"] == "625094******0014"
    assert cards.APPROVE not in response.text
    removed = api.delete(f"/v1/customers/cus_1/cards/{card['card_id']}")
    assert removed.status_code == 200 and removed.json()["status"] == "removed"
    assert api.delete(f"/v1/customers/cus_1/cards/{card['card_id']}").status_code == 404


def test_a_subscription_is_created_and_the_engine_charges_it(api: Api, deps: Deps) -> None:
    sub = subscribed(api, deps)
    assert sub["status"] == "active" and sub["invoices_issued"] == 1
    assert sub["price"] == {"amount": 1900, "currency": "CAD"}
    [invoice] = api.get("/v1/invoices", params={"subscription": sub["id"]}).json()["data"]
    assert (invoice["status"], invoice["total"], invoice["amount_paid"]) == ("paid", 1900, 1900)
    shown = api.get(f"/v1/invoices/{invoice['number']}").json()
    assert shown["payments"][0]["card"] == "625094******0014" and shown["amount_due"] == 0
    assert api.get(f"/v1/subscriptions/{sub['id']}").json()["current_period_start"]


def test_an_upgrade_is_previewed_then_applied_with_its_proration(
        api: Api, deps: Deps, clock: FixedClock) -> None:
    sub = subscribed(api, deps)
    clock.set(clock.now() + timedelta(days=10))
    body = {"plan": "pro-monthly", "when": "now"}
    preview = api.post(f"/v1/subscriptions/{sub['id']}/change-preview", json=body)
    assert preview.status_code == 200, preview.text
    seen = preview.json()
    assert seen["applies"] == "now" and seen["charge_now"]["currency"] == "CAD"
    assert 0 < seen["charge_now"]["amount"] < 4900 - 1900
    assert api.get(f"/v1/subscriptions/{sub['id']}").json()["plan"] == "starter-monthly"
    done = api.post(f"/v1/subscriptions/{sub['id']}/change", json=body).json()
    assert done["charge_now"] == seen["charge_now"] and done["invoice"]
    assert api.get(f"/v1/subscriptions/{sub['id']}").json()["plan"] == "pro-monthly"


def test_cancel_at_period_end_reactivate_pause_resume_and_cancel_now(
        api: Api, deps: Deps) -> None:
    sub = subscribed(api, deps)
    path = f"/v1/subscriptions/{sub['id']}"
    scheduled = api.post(path + "/cancel", json={"at_period_end": True}).json()
    assert scheduled["cancel_at_period_end"] is True and scheduled["status"] == "active"
    assert api.post(path + "/reactivate").json()["cancel_at_period_end"] is False
    assert api.post(path + "/reactivate").status_code == 409
    assert api.post(path + "/pause").json()["status"] == "paused"
    assert api.post(path + "/resume").json()["status"] == "active"
    canceled = api.post(path + "/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert api.get("/v1/subscriptions", params={"status": "canceled"}).json()["data"][0][
        "id"] == sub["id"]


def test_invoices_render_as_html_text_and_pdf(api: Api, deps: Deps) -> None:
    subscribed(api, deps)
    [invoice] = api.get("/v1/invoices", params={"customer": "cus_1",
                                                "status": "paid"}).json()["data"]
    number = invoice["number"]
    html = api.get(f"/v1/invoices/{number}/render")
    assert html.headers["content-type"].startswith("text/html") and number in html.text
    txt = api.get(f"/v1/invoices/{number}/render", params={"format": "txt", "locale": "fr"})
    assert "FACTURE " + number in txt.text
    pdf = api.get(f"/v1/invoices/{number}/render", params={"format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert number in text and "CA$19.00" in text
    assert api.get("/v1/invoices", params={"issued_from": "2030-01-01"}).json()["data"] == []


def test_a_paid_invoice_is_refunded_and_becomes_a_credit_note(api: Api, deps: Deps) -> None:
    subscribed(api, deps)
    [invoice] = api.get("/v1/invoices").json()["data"]
    number = invoice["number"]
    assert api.get(f"/v1/invoices/{number}/pay-link").status_code == 409  # paid: no link
    response = api.post(f"/v1/invoices/{number}/refunds", json={"amount": 500,
                                                                 "reason": "goodwill"},
                        headers={"Idempotency-Key": "refund-1"})
    assert response.status_code == 201, response.text
    refund = response.json()
    assert refund["amount"] == {"amount": 500, "currency": "CAD"}
    assert refund["state"] == "succeeded" and refund["credit_note"]
    again = api.post(f"/v1/invoices/{number}/refunds", json={"amount": 500,
                                                              "reason": "goodwill"},
                     headers={"Idempotency-Key": "refund-1"})
    assert again.json() == refund and again.headers["Idempotent-Replayed"] == "true"
    assert len(api.get(f"/v1/invoices/{number}/refunds").json()["data"]) == 1
    assert api.get(f"/v1/invoices/{number}").json()["amount_refunded"] == 500
    [note] = api.get("/v1/credit-notes", params={"invoice": number}).json()["data"]
    assert note["number"] == refund["credit_note"] and note["amount"] == 500
    shown = api.get(f"/v1/credit-notes/{note['number']}").json()
    assert shown["reason"] == "goodwill" and shown["invoice"] == number
    assert shown["duplicate"] is None  # the invoice's own payment, not a duplicate charge
    assert note["number"] in api.get(f"/v1/credit-notes/{note['number']}/render").text
    too_much = api.post(f"/v1/invoices/{number}/refunds", json={"amount": 5000})
    assert too_much.status_code in (409, 422)


def test_an_open_invoice_has_a_pay_now_link(api: Api, deps: Deps) -> None:
    new_customer(api, "cus_1")
    api.post("/v1/subscriptions", json={"customer": "cus_1", "plan": "starter-monthly",
                                        "trial_days": 0})
    [invoice] = api.get("/v1/invoices", params={"status": "open"}).json()["data"]
    link = api.get(f"/v1/invoices/{invoice['number']}/pay-link").json()
    assert link["url"].startswith(deps.config.public_url) and "/pay" in link["url"]


def test_plans_are_the_stored_catalog(api: Api) -> None:
    plans = {p["code"]: p for p in api.get("/v1/plans").json()["data"]}
    assert plans["starter-monthly"]["amount"] == 1900
    assert plans["starter-monthly"]["currency"] == "CAD"
    assert plans["pro-annual"]["interval_unit"] == "year"


def test_the_report_is_served_as_json_csv_and_html(api: Api, deps: Deps,
                                                   clock: FixedClock) -> None:
    subscribed(api, deps)
    day = clock.now().date().isoformat()
    report = api.get("/v1/reports", params={"from": day, "to": day})
    assert report.status_code == 200, report.text
    data = report.json()
    assert data["range"]["from"] == day and data["currencies"] == ["CAD"]
    assert data["subscriptions"]["CAD"]["starter-monthly"]["active"] == 1
    csv = api.get("/v1/reports", params={"from": day, "to": day, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.count("\n") > 3
    html = api.get("/v1/reports", params={"from": day, "to": day, "format": "html"})
    assert html.headers["content-type"].startswith("text/html") and "<html" in html.text
    backwards = api.get("/v1/reports", params={"from": day, "to": "2020-01-01"})
    assert backwards.status_code == 422
