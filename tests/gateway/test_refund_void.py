"""Refunds are bounded by what is refundable and idempotent per mchRefundNo; voids are same-day
and full-amount only. Both notify with payType=refund."""

from __future__ import annotations

from datetime import timedelta

from billing.gateway import IotpayClient, OrderInfo
from billing.sandbox import SandboxServer
from billing.sandbox.testing import NotifySink
from tests.gateway.conftest import Charge


def _paid(charge: Charge, card: str, amount: int = 5000) -> OrderInfo:
    reply = charge("o-1", card, amount)
    assert reply.data is not None and reply.data.pay_order_id is not None
    return reply.data


def test_partial_refunds_add_up_to_the_refundable_amount_and_no_more(
    client: IotpayClient, charge: Charge, card: str, sink: NotifySink, sandbox: SandboxServer
) -> None:
    order = _paid(charge, card)
    pay_id = order.pay_order_id
    assert pay_id is not None

    def refund(no: str, amount: int) -> tuple[bool, str, int | None]:
        r = client.cc_refund(mch_refund_no=no, pay_order_id=pay_id, refund_amount=amount,
                             notify_url=sink.url)  # fmt: skip
        return r.ok, r.ret_msg, (r.data.refundable if r.data else None)

    assert refund("r-1", 3000) == (True, "success", 2000)
    assert refund("r-2", 2001) == (False, "refund amount exceeds refundable (2000)", None)
    assert refund("r-3", 2000) == (True, "success", 0)
    assert refund("r-4", 1) == (False, "refund amount exceeds refundable (0)", None)
    entry = sandbox.ledger().order("o-1")
    assert entry is not None and entry.refunded == 5000 and entry.refundable == 0
    assert entry.charged == 1  # refunds never change the charge count


def test_a_repeated_refund_number_refunds_once(
    client: IotpayClient, charge: Charge, card: str, sink: NotifySink, sandbox: SandboxServer
) -> None:
    order = _paid(charge, card)
    assert order.pay_order_id is not None
    pay_id = order.pay_order_id
    replies = [
        client.cc_refund(mch_refund_no="r-1", pay_order_id=pay_id, refund_amount=100,
                         notify_url=sink.url)
        for _ in range(3)
    ]
    assert len({r.data.pay_order_id for r in replies if r.data}) == 1
    assert sandbox.ledger().order("o-1").refunded == 100  # type: ignore[union-attr]


def test_refund_data_and_notify_point_at_the_original_order(
    client: IotpayClient, charge: Charge, card: str, sink: NotifySink, sandbox: SandboxServer
) -> None:
    order = _paid(charge, card)
    assert order.pay_order_id is not None
    reply = client.cc_refund(mch_refund_no="r-1", pay_order_id=order.pay_order_id,
                             refund_amount=700, notify_url=sink.url)  # fmt: skip
    assert reply.data is not None
    assert (reply.data.pay_type, reply.data.original_order_id, reply.data.amount) == (
        "refund", order.pay_order_id, 700)  # fmt: skip
    assert reply.data.mch_order_no == "r-1"
    assert sandbox.wait_for_notifies(2)
    refunds = [b for b in sink.bodies() if b["payType"] == "refund"]
    assert [(b["originalOrderId"], b["amount"], b["refundable"]) for b in refunds] == [
        (order.pay_order_id, 700, 4300)]  # fmt: skip
    found = client.cc_query(mch_order_no="r-1")
    assert found.data is not None and found.data.pay_type == "refund"


def test_refunding_an_unknown_or_unpaid_order_fails(
    client: IotpayClient, sink: NotifySink, charge: Charge
) -> None:
    reply = client.cc_refund(mch_refund_no="r-1", pay_order_id="P-nope", refund_amount=1,
                             notify_url=sink.url)  # fmt: skip
    assert not reply.ok and reply.ret_msg == "order not found"


def test_void_on_the_same_day_reverses_the_full_amount(
    client: IotpayClient, charge: Charge, card: str, sink: NotifySink, sandbox: SandboxServer
) -> None:
    order = _paid(charge, card)
    assert order.pay_order_id is not None
    sandbox.advance_clock(timedelta(hours=11))  # 23:00 in Toronto, still the same day
    reply = client.cc_void(mch_refund_no="v-1", pay_order_id=order.pay_order_id,
                           notify_url=sink.url)  # fmt: skip
    assert reply.ok and reply.data is not None
    assert (reply.data.amount, reply.data.refundable, reply.data.pay_type) == (5000, 0, "refund")
    assert sandbox.ledger().order("o-1").refunds[0].kind == "void"  # type: ignore[union-attr]
    assert sandbox.wait_for_notifies(2)
    assert [b["payType"] for b in sink.bodies()].count("refund") == 1


def test_void_is_refused_on_the_next_sandbox_day(
    client: IotpayClient, charge: Charge, card: str, sink: NotifySink, sandbox: SandboxServer
) -> None:
    order = _paid(charge, card)
    assert order.pay_order_id is not None
    sandbox.advance_clock(timedelta(hours=12))  # 00:00 the next day in Toronto
    reply = client.cc_void(mch_refund_no="v-1", pay_order_id=order.pay_order_id,
                           notify_url=sink.url)  # fmt: skip
    assert not reply.ok
    assert reply.ret_msg == "void allowed only on the day of the payment; use cc_refund"
    assert sandbox.ledger().order("o-1").refunds == ()  # type: ignore[union-attr]


def test_void_after_a_partial_refund_is_refused(
    client: IotpayClient, charge: Charge, card: str, sink: NotifySink
) -> None:
    order = _paid(charge, card)
    assert order.pay_order_id is not None
    client.cc_refund(mch_refund_no="r-1", pay_order_id=order.pay_order_id, refund_amount=1,
                     notify_url=sink.url)  # fmt: skip
    reply = client.cc_void(mch_refund_no="v-1", pay_order_id=order.pay_order_id,
                           notify_url=sink.url)  # fmt: skip
    assert not reply.ok and reply.ret_msg.startswith("void not allowed")
