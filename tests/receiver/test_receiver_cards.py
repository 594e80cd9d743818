"""The browser flows: the gateway's return after card entry, and the signed update-card link."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote, urlsplit

import requests
from sqlalchemy import select

from billing.clock import FixedClock
from billing.receiver import ReceiverServer
from billing.sandbox import SandboxServer, cards
from billing.services.links import card_return_url, update_card_token
from billing.services.ports import Deps
from billing.store.engine import Store
from billing.store.models import Card
from billing.store.uow import UnitOfWork
from tests.receiver.helpers import customer_with_card


def card_statuses(store: Store) -> dict[str, str]:
    with UnitOfWork(store) as uow:
        return {c.gateway_card_id: c.status for c in uow.session.scalars(select(Card))}


def open_card_page(http: requests.Session, receiver: ReceiverServer, deps: Deps,
                   customer_id: int) -> requests.Response:
    """The customer's two steps: the link shows a Continue button, the button opens the page."""
    token = update_card_token(deps.config, customer_id, deps.clock.now())
    url = f"{receiver.url}/billing/update-card/{token}"
    shown = http.get(url, allow_redirects=False, timeout=10)
    assert shown.status_code == 200 and '<form method="post">' in shown.text
    return http.post(url, allow_redirects=False, timeout=10)


def test_a_card_is_saved_only_once_the_gateway_confirms_it(
    receiver: ReceiverServer, deps: Deps, sandbox: SandboxServer, store: Store,
    http: requests.Session,
) -> None:
    customer_id = customer_with_card(deps)
    link = open_card_page(http, receiver, deps, customer_id)
    assert link.status_code == 303
    hosted = link.headers["location"]
    assert hosted.startswith(f"{sandbox.root_url}/cc/addcard?key=")
    [card_id] = card_statuses(store)
    assert card_statuses(store) == {card_id: "pending"}

    # A return without our signature is not ours: no gateway call, nothing changes.
    forged = http.get(f"{receiver.url}/iotpay/return/addcard",
                      params={"cardId": card_id, "retCode": "SUCCESS", "sig": "0" * 32},
                      timeout=10)
    assert forged.status_code == 404 and card_statuses(store) == {card_id: "pending"}
    # A premature (signed) return claims success; cc_querycard says otherwise.
    premature = http.get(card_return_url(deps.config, card_id) + "&retCode=SUCCESS", timeout=10)
    assert premature.status_code == 409 and "Card not saved" in premature.text
    assert card_statuses(store) == {card_id: "pending"}

    # The customer enters the card on the hosted page; the gateway sends the browser back.
    assert http.get(hosted, timeout=10).status_code == 200
    form = {"cardNum": cards.APPROVE, "expiryDate": "1230", "holder": "Ann", "cvv": "123"}
    back = http.post(hosted, data=form, allow_redirects=False, timeout=10)
    assert back.status_code == 303
    assert back.headers["location"].startswith(f"{receiver.url}/iotpay/return/addcard?")
    saved = http.get(back.headers["location"], timeout=10)
    assert saved.status_code == 200 and "Card ending 0014 saved" in saved.text
    assert saved.headers["content-type"].startswith("text/html")
    assert card_statuses(store) == {card_id: "active"}
    again = http.get(back.headers["location"], timeout=10)  # reloading the page is harmless
    assert again.status_code == 200 and card_statuses(store) == {card_id: "active"}


BAD_RETURNS = [
    ({"cardId": "NEVER-SEEN-01", "retCode": "SUCCESS"}, 404),
    ({"cardId": "<script>alert(1)</script>"}, 404),
    ({"retCode": "SUCCESS"}, 400),
    ({"cardId": "x" * 31}, 400),
    ({"cardId": "a\nb"}, 400),
]


def test_a_return_for_an_unknown_or_malformed_card_is_a_failure_page(
    receiver: ReceiverServer, http: requests.Session, store: Store
) -> None:
    for query, status in BAD_RETURNS:
        answer = http.get(f"{receiver.url}/iotpay/return/addcard", params=query, timeout=10)
        assert answer.status_code == status, query
        assert "<script>" not in answer.text and "Card ending" not in answer.text
    assert card_statuses(store) == {}


BAD_TOKENS = [
    "1.0123456789abcdef0123456789abcdef", "1.20991231.0123456789abcdef0123456789abcdef",
    "abc", "1", "1.", ".x", "-1.abc", "1.é", "１.abc", "1.%00", "x" * 500,
    "99999999999999999.abc", "1.2099123.abc", "1.20991331.abc", "1..abc",
]


def test_a_bad_update_card_token_is_404(
    receiver: ReceiverServer, deps: Deps, http: requests.Session, store: Store
) -> None:
    customer_with_card(deps)
    for token in BAD_TOKENS:
        url = f"{receiver.url}/billing/update-card/{quote(token)}"
        for answer in (http.get(url, allow_redirects=False, timeout=10),
                       http.post(url, allow_redirects=False, timeout=10)):
            assert answer.status_code == 404 and "not valid" in answer.text, token
    assert card_statuses(store) == {}


def test_an_update_card_link_works_through_its_last_day_and_not_after(
    receiver: ReceiverServer, deps: Deps, clock: FixedClock, http: requests.Session,
    store: Store,
) -> None:
    customer_id = customer_with_card(deps)
    sent_at = clock.now()
    token = update_card_token(deps.config, customer_id, sent_at)
    # The signed expiry day can't be moved: changing it breaks the signature.
    cid, last_day, mac = token.split(".")
    stretched = f"{cid}.{int(last_day) + 10000}.{mac}"
    assert http.post(f"{receiver.url}/billing/update-card/{stretched}", allow_redirects=False,
                     timeout=10).status_code == 404

    clock.set(sent_at + deps.config.update_card_link_ttl)
    fresh = http.post(f"{receiver.url}/billing/update-card/{token}", allow_redirects=False,
                      timeout=10)
    assert fresh.status_code == 303

    clock.set(sent_at + deps.config.update_card_link_ttl + timedelta(days=1))
    for stale in (http.get(f"{receiver.url}/billing/update-card/{token}", timeout=10),
                  http.post(f"{receiver.url}/billing/update-card/{token}", timeout=10)):
        assert stale.status_code == 404 and "expired" in stale.text
    assert len(card_statuses(store)) == 1  # only the fresh link opened a card page


def test_following_an_update_card_link_changes_nothing_until_the_customer_continues(
    receiver: ReceiverServer, deps: Deps, sandbox: SandboxServer, http: requests.Session,
    store: Store,
) -> None:
    customer_id = customer_with_card(deps)
    token = update_card_token(deps.config, customer_id, deps.clock.now())
    url = f"{receiver.url}/billing/update-card/{token}"
    for _ in range(3):  # a mail scanner, a preview, the customer
        shown = http.get(url, timeout=10)
        assert shown.status_code == 200 and "Continue" in shown.text
        assert shown.headers["cache-control"] == "no-store"
    assert card_statuses(store) == {}
    assert http.head(url, timeout=10).status_code in (200, 405)
    assert card_statuses(store) == {}
    assert http.post(url, allow_redirects=False, timeout=10).status_code == 303
    assert list(card_statuses(store).values()) == ["pending"]


def test_a_valid_token_for_a_customer_that_does_not_exist_is_404(
    receiver: ReceiverServer, deps: Deps, http: requests.Session
) -> None:
    answer = open_card_page(http, receiver, deps, 4242)
    assert answer.status_code == 404


def test_the_update_card_redirect_is_not_cached_or_leaked_as_a_referrer(
    receiver: ReceiverServer, deps: Deps, http: requests.Session
) -> None:
    answer = open_card_page(http, receiver, deps, customer_with_card(deps))
    assert answer.status_code == 303
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert urlsplit(answer.headers["location"]).path == "/cc/addcard"
