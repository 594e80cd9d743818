"""Notify delivery: signed, redelivered until SUCCESS (bounded), and each notify fault."""

from __future__ import annotations

import time

from billing.gateway import IotpayClient, verify_notify
from billing.sandbox import DEFAULT_MERCHANT, SandboxServer
from billing.sandbox.testing import FAST_NOTIFY, NotifySink
from tests.gateway.conftest import Charge


def test_a_notify_is_signed_and_verifies(charge: Charge, card: str, sandbox: SandboxServer,
                                         sink: NotifySink) -> None:  # fmt: skip
    paid = charge("o-1", card).data
    assert sandbox.wait_for_notifies(2) and len(sink.received) == 1
    notify = verify_notify(sink.received[0].body, DEFAULT_MERCHANT.key, DEFAULT_MERCHANT.mch_id)
    assert paid is not None and notify.pay_order_id == paid.pay_order_id
    assert (notify.mch_order_no, notify.amount, notify.status, notify.pay_type) == (
        "o-1", 1500, 2, "pay")  # fmt: skip
    assert notify.refundable == 1500 and notify.card_num == "625094******0014"


def test_notifies_are_redelivered_until_exactly_success(
    charge: Charge, card: str, sandbox: SandboxServer, sink: NotifySink, client: IotpayClient
) -> None:
    sink.script((500, "oops"), (200, "FAIL"), (200, "SUCCESS\n"), (404, "SUCCESS"))
    charge("o-1", card)
    assert sandbox.wait_for_notifies(3)
    assert [(r.status, r.answer) for r in sink.received] == [
        (500, "oops"), (200, "FAIL"), (200, "SUCCESS\n"), (404, "SUCCESS"), (200, "SUCCESS")]
    log = sandbox.notify_log()
    assert [a.attempt for a in log] == [1, 2, 3, 4, 5]
    assert [a.acknowledged for a in log] == [False, False, False, False, True]
    assert log[0].http_status == 500 and log[0].answer == "oops"
    assert client.cc_query(mch_order_no="o-1").data.status == 3  # type: ignore[union-attr]


def test_redelivery_stops_after_the_attempt_limit(
    charge: Charge, card: str, sandbox: SandboxServer, sink: NotifySink, client: IotpayClient
) -> None:
    sink.script(*[(503, "busy")] * 10)
    charge("o-1", card)
    assert sandbox.wait_for_notifies(3)
    assert len(sink.received) == FAST_NOTIFY.max_attempts
    assert client.cc_query(mch_order_no="o-1").data.status == 2  # type: ignore[union-attr]


def test_an_unreachable_receiver_is_logged_and_retried(
    client: IotpayClient, card: str, sandbox: SandboxServer
) -> None:
    client.cc_purchasewithtoken(mch_order_no="o-1", mch_user_id="u", card_id=card, amount=1,
                                notify_url="http://127.0.0.1:9/notify")  # fmt: skip
    assert sandbox.wait_for_notifies(3)
    log = sandbox.notify_log()
    assert len(log) == FAST_NOTIFY.max_attempts
    assert all(a.http_status is None and a.error for a in log)


def test_duplicate_notifies_are_sent_even_after_success(
    charge: Charge, card: str, sandbox: SandboxServer, sink: NotifySink
) -> None:
    sandbox.set_faults(duplicate_notify_rate=1.0)
    charge("o-1", card)
    assert sandbox.wait_for_notifies(2)
    assert len(sink.received) == 2 and sink.received[0].body == sink.received[1].body
    assert sorted(a.kind for a in sandbox.notify_log()) == ["duplicate", "real"]


def test_delayed_notifies_arrive_late(
    charge: Charge, card: str, sandbox: SandboxServer, sink: NotifySink
) -> None:
    sandbox.set_faults(delayed_notify_rate=1.0, notify_delay_ms=300)
    started = time.monotonic()
    charge("o-1", card)
    assert not sink.wait_for(1, timeout=0.15)
    assert sink.wait_for(1, timeout=2) and time.monotonic() - started >= 0.3


def test_out_of_order_notifies_let_a_later_one_overtake(
    client: IotpayClient, charge: Charge, card: str, sandbox: SandboxServer, sink: NotifySink
) -> None:
    sandbox.set_faults(reorder_notify_rate=1.0)
    paid = charge("o-1", card).data
    sandbox.set_faults(reorder_notify_rate=0.0)
    assert paid is not None and paid.pay_order_id is not None
    client.cc_refund(mch_refund_no="r-1", pay_order_id=paid.pay_order_id, refund_amount=100,
                     notify_url=sink.url)  # fmt: skip
    assert sandbox.wait_for_notifies(3)
    assert [b["payType"] for b in sink.bodies()] == ["refund", "pay"]


def test_a_held_notify_is_released_even_if_nothing_overtakes_it(
    charge: Charge, card: str, sandbox: SandboxServer, sink: NotifySink
) -> None:
    sandbox.set_faults(reorder_notify_rate=1.0)
    charge("o-1", card)
    assert not sink.wait_for(1, timeout=0.1)
    assert sandbox.wait_for_notifies(3) and len(sink.received) == 1


def test_forged_notifies_fail_verification_and_are_not_retried(
    charge: Charge, card: str, sandbox: SandboxServer
) -> None:
    sandbox.set_faults(forged_notify_rate=1.0)
    with NotifySink(verify_with=DEFAULT_MERCHANT) as verifying, sandbox.client() as c:
        c.cc_purchasewithtoken(mch_order_no="o-1", mch_user_id="u", card_id=card, amount=1500,
                               notify_url=verifying.url)  # fmt: skip
        assert sandbox.wait_for_notifies(3)
        answers = sorted((r.json()["amount"], r.status, r.answer) for r in verifying.received)
    assert answers == [(1500, 200, "SUCCESS"), (1501, 400, "FAIL")]
    forged = [a for a in sandbox.notify_log() if a.kind == "forged"]
    assert len(forged) == 1 and not forged[0].acknowledged


def test_declines_send_no_notify_but_refunds_do(
    client: IotpayClient, charge: Charge, sandbox: SandboxServer, sink: NotifySink, card: str
) -> None:
    from billing.sandbox import cards
    from billing.sandbox.testing import add_card

    add_card(client, "poor", cards.DECLINE_INSUFFICIENT_FUNDS)
    charge("o-1", "poor")
    paid = charge("o-2", card).data
    assert paid is not None and paid.pay_order_id is not None
    client.cc_refund(mch_refund_no="r-1", pay_order_id=paid.pay_order_id, refund_amount=5,
                     notify_url=sink.url)  # fmt: skip
    assert sandbox.wait_for_notifies(3)
    assert sorted((b["mchOrderNo"], b["payType"]) for b in sink.bodies()) == [
        ("o-2", "pay"), ("r-1", "refund")]  # fmt: skip
