"""The hosted add-card and purchase pages, driven like a browser would (no redirects followed)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from billing.gateway import IotpayClient
from billing.sandbox import SandboxServer, cards
from billing.sandbox.testing import NotifySink

RETURN = "https://merchant.test/back?ref=42"


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _submit(browser: requests.Session, url: str, number: str, **extra: str) -> dict[str, str]:
    page = browser.get(url, timeout=5)
    assert page.status_code == 200 and 'name="cardNum"' in page.text
    form = {"cardNum": number, "expiryDate": "1230", "holder": "Ann Lee", "cvv": "321", **extra}
    answer = browser.post(url, data=form, allow_redirects=False, timeout=5)
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.startswith("https://merchant.test/back?ref=42&")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_addcard_page_stores_the_card(client: IotpayClient, browser: requests.Session) -> None:
    reply = client.cc_addcard(card_id="c-1", return_url=RETURN)
    assert reply.data is not None
    assert _submit(browser, reply.data.redirect_url, cards.APPROVE) == {
        "ref": "42", "retCode": "SUCCESS"}  # fmt: skip
    card = client.cc_querycard(card_id="c-1").data
    assert card is not None and card.card_num == "625094******0014" and card.holder == "Ann Lee"


def test_addcard_page_reports_a_bad_card_and_is_single_use(
    client: IotpayClient, browser: requests.Session
) -> None:
    reply = client.cc_addcard(card_id="c-1", return_url=RETURN)
    assert reply.data is not None
    params = _submit(browser, reply.data.redirect_url, cards.INVALID_NUMBER)
    assert params["retCode"] == "FAIL" and params["retMsg"] == "invalid card number"
    assert browser.get(reply.data.redirect_url, timeout=5).status_code == 410
    assert not client.cc_querycard(card_id="c-1").ok


def test_purchase_page_charges_once_and_notifies(
    client: IotpayClient, browser: requests.Session, sandbox: SandboxServer, sink: NotifySink
) -> None:
    reply = client.cc_purchase(mch_order_no="h-1", mch_user_id="u", amount=4200,
                               notify_url=sink.url, return_url=RETURN,
                               subject="Pro plan")  # fmt: skip
    assert reply.data is not None
    assert "Pay 42.00 CAD for Pro plan" in browser.get(reply.data.redirect_url, timeout=5).text
    assert _submit(browser, reply.data.redirect_url, cards.APPROVE) == {
        "ref": "42", "retCode": "SUCCESS", "status": "2"}  # fmt: skip
    assert sandbox.ledger().charges("h-1") == 1
    assert sandbox.wait_for_notifies(2)
    assert [(b["mchOrderNo"], b["amount"]) for b in sink.bodies()] == [("h-1", 4200)]
    again = client.cc_purchase(mch_order_no="h-1", mch_user_id="u", amount=4200,
                               notify_url=sink.url, return_url=RETURN)  # fmt: skip
    assert not again.ok and again.ret_msg == "duplicate mchOrderNo"


def test_purchase_page_decline_redirects_with_the_reason(
    client: IotpayClient, browser: requests.Session, sandbox: SandboxServer, sink: NotifySink
) -> None:
    reply = client.cc_purchase(mch_order_no="h-1", mch_user_id="u", amount=100,
                               notify_url=sink.url, return_url=RETURN)  # fmt: skip
    assert reply.data is not None
    params = _submit(browser, reply.data.redirect_url, cards.DECLINE_DO_NOT_HONOR)
    assert (params["retCode"], params["retMsg"]) == ("FAIL", "Do not honor")
    assert sandbox.ledger().order("h-1").status == 9  # type: ignore[union-attr]


def test_an_unknown_page_key_is_gone(sandbox: SandboxServer, browser: requests.Session) -> None:
    url = sandbox.root_url + "/cc/purchase?key=nope"
    assert browser.get(url, timeout=5).status_code == 410
    assert browser.post(url, data={}, allow_redirects=False, timeout=5).status_code == 410
