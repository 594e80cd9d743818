"""Card numbers, CVVs and the merchant key never reach a log line, an error message or a repr."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from billing.gateway import GatewayOutcomeUnknown, GatewayRequestInvalid, IotpayClient
from billing.gateway import models as m
from billing.sandbox import DEFAULT_MERCHANT, SandboxServer, cards

PAN = cards.APPROVE
CVV = "987"
SECRETS = (PAN, CVV, DEFAULT_MERCHANT.key)


def _clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_nothing_secret_is_logged_even_at_debug(
    caplog: pytest.LogCaptureFixture, client: IotpayClient, sandbox: SandboxServer
) -> None:
    caplog.set_level(logging.DEBUG)
    client.cc_directaddcard(card_id="c-1", card_num=PAN, expiry_date="1230", holder="A", cvv=CVV)
    client.cc_querycard(card_id="c-1")
    client.cc_purchasewithtoken(mch_order_no="o-1", mch_user_id="u", card_id="c-1", amount=1,
                                notify_url="http://127.0.0.1:9/n")  # fmt: skip
    sandbox.set_faults(drop_after_charge_rate=1.0, endpoints=("cc_directaddcard",))
    with pytest.raises(GatewayOutcomeUnknown) as err:
        client.cc_directaddcard(card_id="c-2", card_num=PAN, holder="A", cvv=CVV)
    assert any("cc_directaddcard" in r.getMessage() for r in caplog.records)
    _clean(caplog.text)
    _clean(str(err.value) + repr(err.value))


def test_validation_errors_never_echo_card_data(client: IotpayClient) -> None:
    for number, cvv in ((PAN + "0000", CVV), (PAN, CVV + "99"), ("x" + PAN, CVV)):
        with pytest.raises(GatewayRequestInvalid) as err:
            client.cc_directaddcard(card_id="c-1", card_num=number, holder="A", cvv=cvv)
        _clean(str(err.value) + repr(err.value))
        assert err.value.__context__ is None or err.value.__suppress_context__
    with pytest.raises(GatewayRequestInvalid) as missing:
        m.build(m.DirectAddCardRequest, mch_id="1", login_name="l", card_num=PAN, cvv=CVV)
    _clean(str(missing.value))


def test_reprs_hide_secrets(client: IotpayClient) -> None:
    request = m.build(m.DirectAddCardRequest, mch_id="1", login_name="l", card_id="c",
                      card_num=PAN, holder="A", cvv=CVV)  # fmt: skip
    _clean(repr(request) + str(request) + repr(client) + repr(DEFAULT_MERCHANT))
    assert request.wire()["cardNum"] == PAN  # only the wire form carries it


def test_the_sandbox_never_echoes_cvv_or_full_number(
    client: IotpayClient, sandbox: SandboxServer
) -> None:
    reply = client.cc_directaddcard(card_id="c-1", card_num=PAN, holder="A", cvv=CVV)
    _clean(repr(reply))
    with requests.Session() as s:
        raw = s.post(sandbox.base_url + "cc_querycard",
                     json=_signed({"mchId": "10000701", "cardId": "c-1"}), timeout=5).text
        admin = "".join(s.get(f"{sandbox.root_url}/admin/{p}", timeout=5).text
                        for p in ("ledger", "requests", "notifies"))  # fmt: skip
    _clean(raw + admin)
    assert json.loads(raw)["retData"]["cardNum"] == "625094******0014"


def _signed(fields: dict[str, str]) -> dict[str, str]:
    from billing.gateway import sign

    return {**fields, "sign": sign(fields, DEFAULT_MERCHANT.key)}
