"""Fixtures for gateway tests: a real sandbox on loopback, a notify receiver, a client.

Every test gets a fresh sandbox (starting one costs a few milliseconds), a ``FixedClock`` at
``TEST_START`` and notify retries in milliseconds, so nothing waits for real dates.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from billing.gateway import GatewayReply, IotpayClient, OrderInfo, QueryRetry, sign
from billing.sandbox import DEFAULT_MERCHANT, SandboxServer, cards
from billing.sandbox.testing import NotifySink, add_card, running_sandbox

FAST_QUERY_RETRY = QueryRetry(attempts=3, base_delay=0.001, max_delay=0.004)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[NotifySink]:
    with NotifySink() as receiver:
        yield receiver


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[IotpayClient]:
    with sandbox.client(query_retry=FAST_QUERY_RETRY, rng=random.Random(0)) as c:
        yield c


@pytest.fixture
def card(client: IotpayClient) -> str:
    """A vaulted card that always approves."""
    add_card(client, "card-ok", cards.APPROVE)
    return "card-ok"


Charge = Callable[..., GatewayReply[OrderInfo]]


@pytest.fixture
def charge(client: IotpayClient, sink: NotifySink) -> Charge:
    """``charge(order_no, card_id, amount=1500)``: one token purchase notifying the sink."""

    def _charge(order_no: str, card_id: str, amount: int = 1500) -> GatewayReply[OrderInfo]:
        return client.cc_purchasewithtoken(
            mch_order_no=order_no, mch_user_id="user-1", card_id=card_id, amount=amount,
            notify_url=sink.url,
        )  # fmt: skip

    return _charge


RawPost = Callable[..., dict[str, Any]]


@pytest.fixture
def raw_post(sandbox: SandboxServer) -> Iterator[RawPost]:
    """POST a hand-made body to ``/v3/<endpoint>``, signed with the dev key unless told not to."""
    session = requests.Session()

    def _post(endpoint: str, fields: dict[str, Any], *, key: str | None = None,
              signed: bool = True) -> dict[str, Any]:  # fmt: skip
        body = dict(fields)
        if signed:
            body["sign"] = sign(body, key or DEFAULT_MERCHANT.key)
        response = session.post(sandbox.base_url + endpoint, json=body, timeout=5)
        assert response.status_code == 200
        answer: dict[str, Any] = response.json()
        return answer

    yield _post
    session.close()
