"""The sandbox refuses what IOTPay would, with a retMsg naming the problem (raw HTTP, no client)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from billing.sandbox import SandboxServer
from tests.gateway.conftest import RawPost

TOKEN: dict[str, Any] = {
    "mchId": "10000701", "loginName": "sandbox", "mchOrderNo": "o-1", "mchUserId": "u",
    "cardId": "c", "amount": 100, "currency": "CAD", "notifyUrl": "http://127.0.0.1:9/n",
}  # fmt: skip


def test_a_bad_sign_is_refused(raw_post: RawPost) -> None:
    assert raw_post("cc_purchasewithtoken", TOKEN, key="wrong") == {
        "retCode": "FAIL", "retMsg": "sign error: sign does not match"}  # fmt: skip
    assert raw_post("cc_purchasewithtoken", TOKEN, signed=False)["retMsg"] == (
        "missing field: sign")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mchId": "999"}, "unknown mchId"),
        ({"mchId": None}, "missing field: mchId"),
        ({"loginName": "someone"}, "wrong loginName"),
        ({"loginName": None}, "missing field: loginName"),
        ({"mchOrderNo": None}, "missing field: mchOrderNo"),
        ({"notifyUrl": ""}, "missing field: notifyUrl"),
        ({"mchOrderNo": "x" * 31}, "field too long: mchOrderNo (max 30)"),
        ({"subject": "s" * 65}, "field too long: subject (max 64)"),
        ({"currency": "USD"}, "currency not supported: only CAD"),
        ({"amount": 0}, "invalid amount: must be a positive integer in cents"),
        ({"amount": -1}, "invalid amount: must be a positive integer in cents"),
        ({"amount": 1.5}, "invalid amount: must be a positive integer in cents"),
        ({"amount": "100"}, "invalid amount: must be a positive integer in cents"),
        ({"amount": True}, "invalid amount: must be a positive integer in cents"),
        ({"mchUserId": ["u"]}, "invalid mchUserId: must be a string"),
    ],
)
def test_token_purchase_field_checks(raw_post: RawPost, change: dict[str, Any],
                                     message: str) -> None:  # fmt: skip
    fields = {k: v for k, v in {**TOKEN, **change}.items() if v is not None}
    assert raw_post("cc_purchasewithtoken", fields) == {"retCode": "FAIL", "retMsg": message}


def test_channel_must_be_upi_ex_where_required(raw_post: RawPost) -> None:
    fields = {"mchId": "10000701", "loginName": "sandbox", "cardId": "c",
              "returnUrl": "http://x/r", "channel": "WECHAT"}  # fmt: skip
    assert raw_post("cc_addcard", fields)["retMsg"] == "invalid channel: must be UPI_EX"
    del fields["channel"]
    assert raw_post("cc_addcard", fields)["retMsg"] == "missing field: channel"


def test_query_wants_exactly_one_number(raw_post: RawPost) -> None:
    base = {"mchId": "10000701"}
    assert raw_post("cc_query", base)["retMsg"] == "missing field: mchOrderNo or payOrderId"
    both = {**base, "mchOrderNo": "a", "payOrderId": "b"}
    assert raw_post("cc_query", both)["retMsg"] == "use either mchOrderNo or payOrderId"


def test_refund_amount_must_be_positive(raw_post: RawPost) -> None:
    fields = {"mchId": "10000701", "loginName": "sandbox", "mchRefundNo": "r", "payOrderId": "P",
              "refundAmount": 0, "notifyUrl": "http://x/n"}  # fmt: skip
    assert raw_post("cc_refund", fields)["retMsg"].startswith("invalid refundAmount")


def test_a_body_that_is_not_a_json_object_is_refused(sandbox: SandboxServer) -> None:
    with requests.Session() as s:
        answer = s.post(sandbox.base_url + "cc_query", data=b"[1]", timeout=5).json()
        assert answer == {"retCode": "FAIL",
                          "retMsg": "invalid request: body must be a JSON object"}  # fmt: skip
        assert s.post(sandbox.base_url + "cc_nothing", json={}, timeout=5).status_code == 404
        assert s.get(sandbox.root_url + "/v3/cc_query", timeout=5).status_code == 404


def test_refused_calls_change_nothing(raw_post: RawPost, sandbox: SandboxServer) -> None:
    raw_post("cc_purchasewithtoken", TOKEN, key="wrong")
    raw_post("cc_purchasewithtoken", {**TOKEN, "amount": 0})
    assert sandbox.ledger().orders == ()
