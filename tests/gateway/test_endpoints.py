"""Every endpoint, through the real client, over HTTP, against the sandbox."""

from __future__ import annotations

import pytest

from billing.gateway import GatewayRequestInvalid, IotpayClient
from billing.sandbox import SandboxServer, cards
from billing.sandbox.testing import NotifySink, add_card
from tests.gateway.conftest import Charge


def test_directaddcard_returns_the_masked_card_and_never_the_cvv(client: IotpayClient) -> None:
    reply = client.cc_directaddcard(card_id="c-1", card_num=cards.APPROVE, expiry_date="1230",
                                    holder="Ann Lee", cvv="987")  # fmt: skip
    assert reply.ok and reply.data is not None
    assert (reply.data.card_id, reply.data.card_num, reply.data.expiry_date, reply.data.holder) == (
        "c-1", "625094******0014", "1230", "Ann Lee")  # fmt: skip


def test_directaddcard_refuses_a_number_failing_luhn(client: IotpayClient) -> None:
    reply = client.cc_directaddcard(card_id="c-1", card_num=cards.INVALID_NUMBER, holder="A",
                                    cvv="123", expiry_date="1230")  # fmt: skip
    assert not reply.ok and reply.ret_msg == "invalid card number"


def test_a_card_id_binds_one_card_only(client: IotpayClient) -> None:
    add_card(client, "c-1", cards.APPROVE)
    add_card(client, "c-1", cards.APPROVE)  # the same card again is fine
    reply = client.cc_directaddcard(card_id="c-1", card_num=cards.DECLINE_DO_NOT_HONOR,
                                    holder="A", cvv="123")  # fmt: skip
    assert not reply.ok and reply.ret_msg == "cardId already bound to another card"


def test_querycard(client: IotpayClient, card: str) -> None:
    reply = client.cc_querycard(card_id=card)
    assert reply.ok and reply.data is not None
    assert reply.data.card_num == "625094******0014" and reply.data.holder == "Test Holder"
    missing = client.cc_querycard(card_id="nope")
    assert not missing.ok and missing.ret_msg == "card not found"


def test_purchasewithtoken_approves_with_full_order_info(charge: Charge, card: str) -> None:
    reply = charge("o-1", card, 2599)
    assert reply.ok and reply.data is not None
    d = reply.data
    assert (d.status, d.amount, d.currency, d.mch_order_no, d.pay_type, d.refundable) == (
        2, 2599, "CAD", "o-1", "pay", 2599)  # fmt: skip
    assert d.pay_order_id and d.pay_succ_time == "2025-01-15 12:00:00"  # Toronto local time
    assert d.card_num == "625094******0014" and d.channel == "UPI_EX" and d.auth_num


def test_purchase_with_an_unknown_card_fails(charge: Charge) -> None:
    reply = charge("o-1", "nope")
    assert not reply.ok and reply.ret_msg == "card not found"


def test_a_repeated_order_number_never_charges_twice(
    charge: Charge, card: str, sandbox: SandboxServer
) -> None:
    first = charge("o-1", card)
    again = charge("o-1", card, 999_999)
    assert first.data is not None and again.data is not None
    assert again.data.pay_order_id == first.data.pay_order_id and again.data.amount == 1500
    assert sandbox.ledger().charges("o-1") == 1
    assert sandbox.request_count("cc_purchasewithtoken", "o-1") == 2


def test_a_repeated_declined_order_number_stays_declined_and_uncharged(
    client: IotpayClient, charge: Charge, sandbox: SandboxServer
) -> None:
    add_card(client, "flaky", cards.DECLINE_TWICE_THEN_APPROVE)
    for _ in range(4):
        reply = charge("o-1", "flaky")
        assert reply.data is not None and reply.data.status == 9
    assert sandbox.ledger().charges("o-1") == 0
    assert charge("o-2", "flaky").data.status == 9  # type: ignore[union-attr]  # second try
    assert charge("o-3", "flaky").data.status == 2  # type: ignore[union-attr]  # third: approved


def test_query_by_either_number_and_not_found(
    client: IotpayClient, charge: Charge, card: str
) -> None:
    paid = charge("o-1", card).data
    assert paid is not None and paid.pay_order_id is not None
    by_no = client.cc_query(mch_order_no="o-1")
    by_id = client.cc_query(pay_order_id=paid.pay_order_id)
    assert by_no.data is not None and by_id.data is not None
    assert by_no.data.pay_order_id == by_id.data.pay_order_id == paid.pay_order_id
    assert by_no.data.paid
    missing = client.cc_query(mch_order_no="never-sent")
    assert not missing.ok and missing.order_not_found and missing.ret_msg == "order not found"
    with pytest.raises(GatewayRequestInvalid):
        client.cc_query()


def test_query_reports_a_decline_reason(client: IotpayClient, charge: Charge) -> None:
    add_card(client, "poor", cards.DECLINE_INSUFFICIENT_FUNDS)
    charge("o-1", "poor")
    reply = client.cc_query(mch_order_no="o-1")
    assert reply.ok and reply.data is not None and reply.data.failed
    assert reply.ret_msg == "Insufficient funds"


def test_addcard_and_purchase_return_hosted_page_urls(
    client: IotpayClient, sandbox: SandboxServer, sink: NotifySink
) -> None:
    added = client.cc_addcard(card_id="c-9", return_url="https://m.test/back")
    assert added.ok and added.data is not None
    assert added.data.redirect_url.startswith(sandbox.root_url + "/cc/addcard?key=")
    assert added.data.secure_id and added.data.secure_id in added.data.redirect_url
    bought = client.cc_purchase(mch_order_no="h-1", mch_user_id="u", amount=100,
                                notify_url=sink.url, return_url="https://m.test/back")  # fmt: skip
    assert bought.ok and bought.data is not None
    assert bought.data.redirect_url.startswith(sandbox.root_url + "/cc/purchase?key=")


def test_a_second_merchant_has_its_own_books(sink: NotifySink) -> None:
    from billing.sandbox import DEFAULT_MERCHANT, Merchant
    from billing.sandbox.testing import running_sandbox

    other = Merchant("20000002", "other-key", "bob")
    with running_sandbox(merchants=[DEFAULT_MERCHANT, other]) as sandbox:
        with sandbox.client() as first, sandbox.client(other) as second:
            add_card(first, "c")
            reply = second.cc_querycard(card_id="c")
            assert not reply.ok and reply.ret_msg == "card not found"
            add_card(second, "c")
            for c in (first, second):
                c.cc_purchasewithtoken(mch_order_no="same", mch_user_id="u", card_id="c",
                                       amount=100, notify_url=sink.url)  # fmt: skip
        ledger = sandbox.ledger()
        assert ledger.charges("same", DEFAULT_MERCHANT.mch_id) == 1
        assert ledger.charges("same", "20000002") == 1
        assert ledger.to_json()["charges"] == {"10000701": {"same": 1}, "20000002": {"same": 1}}
