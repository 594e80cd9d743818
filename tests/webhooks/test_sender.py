"""The HTTP sender turns every way a POST can go wrong into an outcome, never an exception."""

from __future__ import annotations

import requests

from billing.webhooks import verify
from billing.webhooks.sender import post

from .conftest import Receiver

BODY = b'{"id":"evt_1"}'


def test_a_2xx_is_delivered_and_signed(receiver: Receiver) -> None:
    receiver.answers["/ok"] = [204]
    with requests.Session() as http:
        outcome = post(http, receiver.url("/ok"), "whsec_x", BODY, timestamp=1_000)
    assert outcome.delivered and outcome.status == 204
    [got] = receiver.at("/ok")
    assert got.body == BODY and verify("whsec_x", got.headers["Billing-Signature"], BODY, 1_000)


def test_a_slow_app_times_out_into_an_outcome(receiver: Receiver) -> None:
    receiver.delays["/slow"] = 1.0
    with requests.Session() as http:
        outcome = post(http, receiver.url("/slow"), "whsec_x", BODY, timestamp=1,
                       timeout=(1.0, 0.2))
    assert not outcome.delivered and outcome.status is None
    assert outcome.error is not None and "Timeout" in outcome.error


def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver: Receiver) -> None:
    receiver.answers["/moved"] = [302]
    with requests.Session() as http:
        outcome = post(http, receiver.url("/moved"), "whsec_x", BODY, timestamp=1)
    assert (outcome.delivered, outcome.status, outcome.error) == (False, 302, "HTTP 302")


def test_an_unreachable_host_is_an_outcome(dead_url: str) -> None:
    with requests.Session() as http:
        outcome = post(http, dead_url, "whsec_x", BODY, timestamp=1)
    assert outcome.status is None and outcome.error and "ConnectionError" in outcome.error
