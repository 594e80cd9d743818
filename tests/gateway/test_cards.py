"""Each documented test card behaves as docs/gateway.md promises."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing.domain.payments import Attempt, AttemptState, DeclineKind, decide
from billing.gateway import GatewayReply, IotpayClient, OrderInfo, outcome_of_purchase
from billing.sandbox import SandboxServer, cards
from billing.sandbox.testing import NotifySink, add_card
from tests.gateway.conftest import Charge


def kind_of(reply: GatewayReply[OrderInfo], sandbox: SandboxServer) -> DeclineKind | None:
    """How the engine classifies this reply: from its fields (the card's expiry), not its words."""
    assert reply.data is not None and reply.data.mch_order_no is not None
    asked = Attempt(reply.data.mch_order_no, reply.data.amount or 0, "CAD", AttemptState.SENDING)
    return decide(asked, outcome_of_purchase(reply), sandbox.clock.now()).decline


@pytest.mark.parametrize(
    ("number", "reason", "kind"),
    [
        (cards.DECLINE_INSUFFICIENT_FUNDS, "Insufficient funds", "soft"),
        (cards.DECLINE_EXPIRED_CARD, "Expired card", "hard"),
        (cards.DECLINE_DO_NOT_HONOR, "Do not honor", "soft"),
    ],
)
def test_declining_cards(
    client: IotpayClient, charge: Charge, sandbox: SandboxServer, sink: NotifySink,
    number: str, reason: str, kind: str,
) -> None:  # fmt: skip
    add_card(client, "c", number)
    reply = charge("o-1", "c")
    assert reply.ok and reply.data is not None
    assert (reply.data.status, reply.ret_msg) == (9, reason)
    assert reply.data.refundable == 0
    assert kind_of(reply, sandbox) == kind
    assert sandbox.ledger().charges("o-1") == 0
    assert sandbox.wait_for_notifies(2)
    assert sink.received == []  # declines send no notify


def test_the_approving_card_approves_and_notifies(
    client: IotpayClient, charge: Charge, sandbox: SandboxServer, sink: NotifySink
) -> None:
    add_card(client, "c", cards.APPROVE)
    assert charge("o-1", "c").data.status == 2  # type: ignore[union-attr]
    assert sandbox.wait_for_notifies(2)
    assert [b["mchOrderNo"] for b in sink.bodies()] == ["o-1"]


def test_the_limit_card_approves_up_to_100_and_declines_above(
    client: IotpayClient, charge: Charge, sandbox: SandboxServer
) -> None:
    add_card(client, "c", cards.APPROVE_UP_TO_100)
    assert charge("o-1", "c", cards.AMOUNT_LIMIT).data.status == 2  # type: ignore[union-attr]
    over = charge("o-2", "c", cards.AMOUNT_LIMIT + 1)
    assert over.data is not None and over.data.status == 9
    assert over.ret_msg == "Exceeds amount limit" and kind_of(over, sandbox) == "soft"


def test_the_flaky_card_declines_twice_then_approves(client: IotpayClient, charge: Charge) -> None:
    add_card(client, "c", cards.DECLINE_TWICE_THEN_APPROVE)
    statuses = [charge(f"o-{i}", "c").data.status for i in range(4)]  # type: ignore[union-attr]
    assert statuses == [9, 9, 2, 2]


def test_the_pending_card_settles_after_the_delay_on_the_sandbox_clock(
    client: IotpayClient, charge: Charge, sandbox: SandboxServer, sink: NotifySink
) -> None:
    add_card(client, "c", cards.PENDING_THEN_APPROVE)
    reply = charge("o-1", "c")
    assert reply.data is not None and reply.data.status == 1 and reply.data.unsettled
    assert sandbox.ledger().charges("o-1") == 0
    sandbox.advance_clock(timedelta(minutes=1))
    assert sandbox.ledger().order("o-1").status == 1  # type: ignore[union-attr]
    sandbox.advance_clock(timedelta(minutes=1))
    assert sandbox.ledger().charges("o-1") == 1
    assert sandbox.wait_for_notifies(2)
    assert [(b["mchOrderNo"], b["status"]) for b in sink.bodies()] == [("o-1", 2)]
    assert client.cc_query(mch_order_no="o-1").data.paid  # type: ignore[union-attr]


def test_the_pending_card_settles_at_the_third_query(
    client: IotpayClient, charge: Charge, sandbox: SandboxServer, sink: NotifySink
) -> None:
    add_card(client, "c", cards.PENDING_THEN_APPROVE)
    charge("o-1", "c")
    seen = [client.cc_query(mch_order_no="o-1").data.status for _ in range(3)]  # type: ignore[union-attr]
    assert seen == [1, 1, 2]
    assert sandbox.wait_for_notifies(2) and len(sink.received) == 1
    assert sandbox.ledger().charges("o-1") == 1


def test_a_card_past_its_expiry_month_is_declined_whatever_its_number(
    client: IotpayClient, charge: Charge, sandbox: SandboxServer
) -> None:
    add_card(client, "c", cards.APPROVE, expiry="0125")  # valid through January 2025
    assert charge("o-1", "c").data.status == 2  # type: ignore[union-attr]
    sandbox.advance_clock(timedelta(days=20))  # 2025-02-04
    late = charge("o-2", "c")
    assert late.data is not None and late.data.status == 9 and late.ret_msg == "Expired card"


def test_unlisted_valid_numbers_approve() -> None:
    assert cards.behaviour_of("4111111111111111") is cards.Behaviour.APPROVE
    assert cards.luhn_valid("4111111111111111") and not cards.luhn_valid(cards.INVALID_NUMBER)
    assert all(cards.luhn_valid(card.number) for card in cards.TEST_CARDS)
