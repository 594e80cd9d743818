"""verify_notify: each way a notify is refused, and what a good one yields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.gateway import (
    Notify,
    NotifyBadSign,
    NotifyMalformed,
    NotifyMissingFields,
    NotifyWrongMerchant,
    dedupe_key,
    sign,
    verify_notify,
)

KEY = "notify-key"
MCH = "10000701"


def _body(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "payOrderId": "P1", "mchId": MCH, "mchOrderNo": "o-1", "originalOrderId": "",
        "amount": 1500, "currency": "CAD", "payType": "pay", "refundable": 1500, "status": 2,
        "invoiceNum": "000001", "paySuccTime": "2025-01-15 12:00:00",
        "cardNum": "625094******0014", "cardType": "UP", "expiryDate": "1230",
        "authNum": "123456", "transNum": "000000000001", "channel": "UPI_EX",
    }  # fmt: skip
    fields.update(changes)
    return fields


def _signed(fields: dict[str, Any], key: str = KEY) -> bytes:
    return json.dumps({**fields, "sign": sign(fields, key)}).encode()


def test_a_good_notify_is_typed_and_keeps_its_raw_fields() -> None:
    notify = verify_notify(_signed(_body()), KEY, MCH)
    assert isinstance(notify, Notify)
    assert (notify.pay_order_id, notify.amount, notify.status, notify.pay_type) == (
        "P1", 1500, 2, "pay")  # fmt: skip
    assert notify.paid
    assert notify.fields["sign"] == sign(_body(), KEY)
    assert dedupe_key(notify).startswith("P1:") and len(dedupe_key(notify)) <= 100


def test_the_dedupe_key_covers_everything_a_notify_asserts() -> None:
    key = dedupe_key(verify_notify(_signed(_body()), KEY, MCH))
    assert dedupe_key(verify_notify(_signed(_body()), KEY, MCH)) == key  # a redelivery
    for change in ({"amount": 1}, {"status": 3}, {"currency": "USD"}, {"mchOrderNo": "other"},
                   {"payType": "refund"}, {"riskLevel": "low"}):
        other = dedupe_key(verify_notify(_signed(_body(**change)), KEY, MCH))
        assert other != key, change


def test_unknown_new_fields_are_part_of_the_sign() -> None:
    fields = _body(riskLevel="low")
    assert verify_notify(_signed(fields), KEY, MCH).fields["riskLevel"] == "low"
    forged = json.loads(_signed(_body()))
    forged["riskLevel"] = "low"  # added after signing
    with pytest.raises(NotifyBadSign):
        verify_notify(json.dumps(forged).encode(), KEY, MCH)


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b""])
def test_malformed_bodies(raw: bytes) -> None:
    with pytest.raises(NotifyMalformed):
        verify_notify(raw, KEY, MCH)


def test_missing_fields_are_listed() -> None:
    fields = _body()
    del fields["amount"]
    fields["status"] = ""
    with pytest.raises(NotifyMissingFields) as err:
        verify_notify(_signed(fields), KEY, MCH)
    assert err.value.fields == ("amount", "status")
    with pytest.raises(NotifyMissingFields, match="sign"):
        verify_notify(json.dumps(_body()).encode(), KEY, MCH)


def test_a_changed_amount_or_the_wrong_key_is_a_bad_sign() -> None:
    tampered = json.loads(_signed(_body()))
    tampered["amount"] = 1
    with pytest.raises(NotifyBadSign):
        verify_notify(json.dumps(tampered).encode(), KEY, MCH)
    with pytest.raises(NotifyBadSign):
        verify_notify(_signed(_body(), key="other"), KEY, MCH)


def test_a_valid_notify_for_another_merchant_is_refused() -> None:
    with pytest.raises(NotifyWrongMerchant):
        verify_notify(_signed(_body(mchId="999")), KEY, MCH)


def test_a_signed_notify_with_a_wrongly_typed_field_is_malformed() -> None:
    with pytest.raises(NotifyMalformed, match="amount"):
        verify_notify(_signed(_body(amount="lots")), KEY, MCH)


def test_refund_notify_dedupe_key_differs_from_the_payment() -> None:
    notify = verify_notify(_signed(_body(payOrderId="R1", payType="refund",
                                         originalOrderId="P1")), KEY, MCH)  # fmt: skip
    payment = verify_notify(_signed(_body()), KEY, MCH)
    assert dedupe_key(notify).startswith("R1:") and dedupe_key(notify) != dedupe_key(payment)
    assert notify.original_order_id == "P1"
