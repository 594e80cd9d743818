"""Local validation before sending, tolerant reply parsing, status and decline helpers."""

from __future__ import annotations

import pytest

from billing.errors import InvalidInput
from billing.gateway import (
    CardInfo,
    GatewayReply,
    GatewayRequestInvalid,
    OrderInfo,
    is_failed,
    is_order_not_found,
    is_paid,
    is_unsettled,
    mask_pan,
)
from billing.gateway import models as m

BASE = {"mch_id": "10000701", "login_name": "jack123"}
TOKEN = {**BASE, "mch_order_no": "o-1", "mch_user_id": "u", "card_id": "c", "amount": 100,
         "notify_url": "https://x.io/n"}  # fmt: skip


def test_a_31_character_order_number_is_refused_before_sending() -> None:
    with pytest.raises(GatewayRequestInvalid) as err:
        m.build(m.PurchaseWithTokenRequest, **{**TOKEN, "mch_order_no": "x" * 31})
    assert err.value.fields == ("mchOrderNo",)
    assert "at most 30 characters" in str(err.value)
    assert isinstance(err.value, InvalidInput)
    m.build(m.PurchaseWithTokenRequest, **{**TOKEN, "mch_order_no": "x" * 30})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"currency": "USD"}, "currency"),
        ({"login_name": "x" * 13}, "loginName"),
        ({"notify_url": "h" * 251}, "notifyUrl"),
        ({"client_ip": "1" * 51}, "clientIp"),
        ({"subject": "s" * 65}, "subject"),
        ({"card_id": ""}, "cardId"),
    ],
)
def test_each_reference_limit_is_checked(change: dict[str, object], field: str) -> None:
    with pytest.raises(GatewayRequestInvalid) as err:
        m.build(m.PurchaseWithTokenRequest, **{**TOKEN, **change})
    assert err.value.fields == (field,)


def test_a_missing_field_is_named() -> None:
    fields = {k: v for k, v in TOKEN.items() if k != "notify_url"}
    with pytest.raises(GatewayRequestInvalid, match="notifyUrl: Field required"):
        m.build(m.PurchaseWithTokenRequest, **fields)


def test_wire_form_is_camel_case_with_defaults_and_no_unset_optionals() -> None:
    wire = m.build(m.PurchaseWithTokenRequest, **TOKEN).wire()
    assert wire == {"mchId": "10000701", "loginName": "jack123", "mchOrderNo": "o-1",
                    "mchUserId": "u", "cardId": "c", "amount": 100, "currency": "CAD",
                    "notifyUrl": "https://x.io/n"}  # fmt: skip


def test_query_needs_exactly_one_of_its_two_numbers() -> None:
    with pytest.raises(GatewayRequestInvalid, match="exactly one"):
        m.build(m.QueryRequest, mch_id="1")
    with pytest.raises(GatewayRequestInvalid, match="exactly one"):
        m.build(m.QueryRequest, mch_id="1", mch_order_no="a", pay_order_id="b")
    assert m.build(m.QueryRequest, mch_id="1", pay_order_id="b").wire() == {
        "mchId": "1", "payOrderId": "b"}  # fmt: skip


def test_order_info_tolerates_any_order_unknown_fields_and_empty_strings() -> None:
    info = OrderInfo.model_validate({"status": "2", "newField": {"x": 1}, "amount": 100,
                                     "paySuccTime": "", "mchOrderNo": "o"})  # fmt: skip
    assert (info.status, info.amount, info.pay_succ_time, info.mch_order_no) == (2, 100, None, "o")
    assert info.paid and not info.failed and not info.unsettled
    assert OrderInfo.model_validate({}).unsettled


def test_card_info_never_keeps_a_cvv_or_a_full_number() -> None:
    info = CardInfo.model_validate({"cardId": "c", "cardNum": "6250947000000014", "cvv": "987",
                                    "holder": "A", "expiryDate": "1230"})  # fmt: skip
    assert info.card_num == "625094******0014"
    assert "cvv" not in info.model_dump() and "987" not in repr(info)
    assert "6250947000000014" not in repr(info)


def test_mask_pan() -> None:
    assert mask_pan("6250947000000014") == "625094******0014"
    assert mask_pan("432567******2266") == "432567******2266"
    assert mask_pan("1234") == "1234"


@pytest.mark.parametrize(
    ("status", "paid", "failed", "unsettled"),
    [(0, False, False, True), (1, False, False, True), (2, True, False, False),
     (3, True, False, False), (9, False, True, False), (None, False, False, True),
     (5, False, False, True)],
)  # fmt: skip
def test_status_helpers(status: int | None, paid: bool, failed: bool, unsettled: bool) -> None:
    assert (is_paid(status), is_failed(status), is_unsettled(status)) == (paid, failed, unsettled)


def test_order_not_found_needs_a_fail_that_names_the_order() -> None:
    def reply(code: str, msg: str) -> GatewayReply[OrderInfo]:
        return GatewayReply("cc_query", code, msg, None)

    assert is_order_not_found(reply("FAIL", "order not found"))
    assert is_order_not_found(reply("FAIL", "Order does not exist"))
    assert not is_order_not_found(reply("FAIL", "merchant not found"))
    assert not is_order_not_found(reply("FAIL", "sign error: sign does not match"))
    assert not is_order_not_found(reply("SUCCESS", "order not found"))
    assert reply("FAIL", "order not found").order_not_found


def test_an_amount_beyond_the_gateway_int_is_refused_before_sending() -> None:
    from billing.domain.money import MAX_CHARGE
    from billing.gateway.errors import GatewayRequestInvalid
    from billing.gateway.models import PurchaseWithTokenRequest, build

    fields = dict(mch_id="1", login_name="l", mch_order_no="o", mch_user_id="u", card_id="c",
                  notify_url="https://x/n")
    assert build(PurchaseWithTokenRequest, amount=MAX_CHARGE, **fields).amount == MAX_CHARGE
    with pytest.raises(GatewayRequestInvalid, match="amount"):
        build(PurchaseWithTokenRequest, amount=MAX_CHARGE + 1, **fields)
