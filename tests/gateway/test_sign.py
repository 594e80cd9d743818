"""The MD5 sign, checked against the notes' test vector and each rule of the algorithm."""

from __future__ import annotations

import hashlib

from pydantic import SecretStr

from billing.gateway import sign, verify_sign

VECTOR = {
    "mchId": "10000701", "mchOrderNo": "1234567890abc", "mchUserId": "007", "amount": 1500,
    "currency": "CAD", "loginName": "jack123", "notifyUrl": "https://example.com/notify",
    "returnUrl": "https://example.com/return", "channel": "UPI_EX", "subject": "",
}  # fmt: skip


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest().upper()


def test_notes_test_vector() -> None:
    assert sign(VECTOR, "TESTKEY") == "02156A7A63ED2CCE81BC4923C1EEF640"
    assert sign(VECTOR, SecretStr("TESTKEY")) == "02156A7A63ED2CCE81BC4923C1EEF640"


def test_sign_field_empty_and_null_are_left_out_but_zero_is_kept() -> None:
    fields = {"b": 0, "a": "x", "c": "", "d": None, "sign": "WHATEVER"}
    assert sign(fields, "K") == _md5("a=x&b=0&key=K")


def test_names_sort_case_insensitively_then_by_exact_name() -> None:
    fields = {"b": "2", "B": "1", "a": "3", "Ab": "4"}
    assert sign(fields, "K") == _md5("a=3&Ab=4&B=1&b=2&key=K")


def test_values_are_raw_not_url_encoded_and_utf8() -> None:
    fields = {"notifyUrl": "https://x.io/n?a=1&b=2", "subject": "café"}
    assert sign(fields, "K") == _md5("notifyUrl=https://x.io/n?a=1&b=2&subject=café&key=K")


def test_verify_accepts_the_right_sign_in_either_case_and_rejects_others() -> None:
    signed = {**VECTOR, "sign": "02156A7A63ED2CCE81BC4923C1EEF640"}
    assert verify_sign(signed, "TESTKEY")
    assert verify_sign({**signed, "sign": signed["sign"].lower()}, "TESTKEY")
    assert not verify_sign(signed, "OTHERKEY")
    assert not verify_sign({**signed, "amount": 1501}, "TESTKEY")
    assert not verify_sign({**signed, "sign": None}, "TESTKEY")
    assert not verify_sign(dict(VECTOR), "TESTKEY")


def test_a_field_added_later_changes_the_sign() -> None:
    assert sign({**VECTOR, "newField": "v"}, "TESTKEY") != sign(VECTOR, "TESTKEY")
