"""A customer's card journeys in a real browser (headless Chromium) against the real servers:
the sandbox's hosted card page, the receiver's return and update-card pages, the engine's
emails over SMTP, the money checked against the sandbox ledger.

Each test runs on every selected database backend. The HTTP-level edge cases (forged returns,
bad tokens, expiry) are covered in tests/receiver/test_receiver_cards.py; here the point is that
the pages work for a person with a browser: forms submit, redirects land, buttons are there.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import SecretStr

from billing.sandbox import cards
from billing.services.cards import add_direct, start_card_setup
from billing.services.customers import add_customer
from billing.services.webhooks import add_endpoint
from billing.store.uow import UnitOfWork
from tests.browser.harness import Shop, fill_card_page, link_in
from tests.webhooks.conftest import Receiver, verified

if TYPE_CHECKING:
    from playwright.sync_api import Page


def new_customer(shop: Shop, ref: str) -> str:
    """A customer as the merchant's back office creates one (the JSON API will do the same)."""
    with UnitOfWork(shop.deps.store) as uow:
        add_customer(uow, shop.clock, external_id=ref, email=f"{ref}@example.com",
                     name=ref.title(), timezone="America/Toronto")
        uow.commit()
    return ref


def test_the_merchants_app_adds_a_customer_and_a_card_through_the_api_and_the_browser_pays(
    shop: Shop, page: Page
) -> None:
    api = shop.api
    assert api is not None
    created = api.post("/v1/customers", json={"external_id": "ann", "email": "ann@example.com",
                                              "name": "Ann", "timezone": "America/Toronto"})
    assert created.status_code == 201, created.text
    setup = api.post("/v1/customers/ann/card-setups", headers={"Idempotency-Key": "setup-ann-1"})
    assert setup.status_code == 201, setup.text
    card, redirect = setup.json()["card"], setup.json()["redirect_url"]
    assert card["status"] == "pending"
    assert shop.card_statuses("ann") == {card["card_id"]: "pending"}

    page.goto(redirect)
    assert page.get_by_role("heading").inner_text() == "Add a card"
    fill_card_page(page, cards.APPROVE, holder="Ann Example")
    page.wait_for_url(f"{shop.receiver_url}/iotpay/return/addcard?**")
    assert page.get_by_role("heading").inner_text() == "Card ending 0014 saved"
    [saved] = api.get("/v1/customers/ann/cards").json()["data"]
    assert (saved["card_id"], saved["status"], saved["number"]) == (
        card["card_id"], "active", "625094******0014")

    sub = api.post("/v1/subscriptions", json={"customer": "ann", "plan": "coffee-weekly"})
    assert sub.status_code == 201, sub.text
    assert shop.ledger_charges() == 0
    shop.tick()
    [invoice] = api.get("/v1/invoices", params={"customer": "ann"}).json()["data"]
    assert invoice["status"] == "paid" and invoice["amount_paid"] == invoice["total"] > 0
    assert shop.ledger_charges() == 1
    assert shop.charged_cards() == [(card["card_id"], invoice["total"])]  # typed in Chromium
    shop.assert_exactly_once()


def test_a_declined_card_is_replaced_through_the_link_in_the_payment_failed_email(
    shop: Shop, page: Page
) -> None:
    new_customer(shop, "dee")
    add_direct(shop.deps, "dee", number=SecretStr(cards.DECLINE_EXPIRED_CARD),
               cvv=SecretStr("123"), expiry="1230", holder="Dee")
    sub = shop.subscribe("dee", "starter-monthly", trial_days=0)
    shop.tick()  # a hard decline: no retry until the customer gives another card
    [invoice] = shop.invoices(sub)
    assert invoice.status == "open" and invoice.hard_declined
    [old_card] = shop.card_statuses("dee")

    failed = shop.inbox.wait_for("failed")
    assert failed["To"] == "dee@example.com"
    link = link_in(failed, "/billing/update-card/")
    assert link.startswith(f"{shop.receiver_url}/billing/update-card/")

    page.goto(link)  # opening the link only shows a button: mail scanners change nothing
    assert page.get_by_role("heading").inner_text() == "Update your card"
    assert shop.card_statuses("dee") == {old_card: "active"}
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{shop.sandbox.root_url}/cc/addcard?**")
    assert page.get_by_role("heading").inner_text() == "Add a card"
    assert list(shop.card_statuses("dee").values()) == ["active", "pending"]

    fill_card_page(page, cards.APPROVE, holder="Dee")
    page.wait_for_url(f"{shop.receiver_url}/iotpay/return/addcard?**")
    assert page.get_by_role("heading").inner_text() == "Card ending 0014 saved"
    statuses = shop.card_statuses("dee")
    assert list(statuses.values()) == ["active", "active"]
    [new_card] = [c for c in statuses if c != old_card]

    shop.tick()  # the new card retries the stalled invoice at once
    [invoice] = shop.invoices(sub)
    assert invoice.status == "paid" and invoice.attempt_count == 2
    assert shop.subscription(sub).status == "active"
    assert shop.ledger_charges() == 1
    assert shop.charged_cards() == [(new_card, invoice.total)]  # not the declined one
    shop.assert_exactly_once()


def test_a_card_the_gateway_refuses_is_not_saved_and_the_page_says_so(
    shop: Shop, page: Page
) -> None:
    new_customer(shop, "cy")
    card, redirect = start_card_setup(shop.deps, "cy")
    page.goto(redirect)
    fill_card_page(page, cards.INVALID_NUMBER, holder="Cy")
    page.wait_for_url(f"{shop.receiver_url}/iotpay/return/addcard?**")
    assert page.get_by_role("heading").inner_text() == "Card not saved"
    assert "did not confirm your card" in page.inner_text("body")
    assert shop.card_statuses("cy") == {card.card_id: "pending"}


def test_a_payment_failed_emails_pay_now_link_is_paid_in_the_browser_and_the_app_hears_of_it(
    shop: Shop, page: Page, receiver: Receiver
) -> None:
    hook = add_endpoint(shop.deps.store, shop.clock.now(), receiver.url("/hooks"),
                        ["invoice.paid", "payment.failed"])
    new_customer(shop, "eve")
    add_direct(shop.deps, "eve", number=SecretStr(cards.DECLINE_INSUFFICIENT_FUNDS),
               cvv=SecretStr("123"), expiry="1230", holder="Eve")
    sub = shop.subscribe("eve", "starter-monthly", trial_days=0)
    shop.tick()  # a soft decline: the invoice is open with a retry scheduled
    [invoice] = shop.invoices(sub)
    assert invoice.status == "open" and shop.ledger_charges() == 0

    link = link_in(shop.inbox.wait_for("failed"), "/billing/pay/")
    page.goto(link)  # the GET only shows the invoice and a button
    assert page.get_by_role("heading").inner_text() == f"Pay invoice {invoice.number}"
    assert len(shop.attempts(invoice.id)) == 1
    page.get_by_role("button", name="Pay now").click()
    page.wait_for_url(f"{shop.sandbox.root_url}/cc/purchase?**")
    fill_card_page(page, cards.APPROVE, holder="Eve")
    page.wait_for_url(f"{shop.receiver_url}/iotpay/return/pay?**")
    assert page.get_by_role("heading").inner_text() in {"Paid, thank you", "Payment processing"}
    shop.sandbox.wait_for_notifies(5.0)
    shop.settle(shop.notifies_applied)

    [invoice] = shop.invoices(sub)
    assert invoice.status == "paid" and invoice.amount_paid == invoice.total
    assert shop.ledger_charges() == 1
    shop.tick()  # the engine's next pass tells the merchant's app
    received = receiver.at("/hooks")
    types = [verified(hook.secret, r, shop.clock)["type"] for r in received]
    assert types == ["payment.failed", "invoice.paid"]
    paid = received[1].json()["data"]["object"]
    assert (paid["invoice_number"], paid["invoice_id"]) == (invoice.number, invoice.id)

    shop.clock.advance(timedelta(days=3))  # past the retry that was due: it charges nothing
    shop.tick()
    assert shop.ledger_charges() == 1
    shop.assert_exactly_once()
