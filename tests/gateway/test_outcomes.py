"""The two translations into attempt outcomes: replies by their codes and fields, never their
words, and exceptions by what they prove about sending."""

from __future__ import annotations

import pytest

from billing.domain.payments import OutcomeKind, Source
from billing.gateway import (
    GatewayNotSent,
    GatewayOutcomeUnknown,
    GatewayReply,
    GatewayRequestInvalid,
    OrderInfo,
    outcome_of_error,
    outcome_of_notify,
    outcome_of_purchase,
    outcome_of_query,
)


def reply(code: str = "SUCCESS", msg: str = "", **data: object) -> GatewayReply[OrderInfo]:
    body = {"mchOrderNo": "K-1", "amount": 1900, "currency": "CAD", "mchId": "10000701",
            "payOrderId": "P1", **data}
    return GatewayReply("cc_purchasewithtoken", code, msg,
                        OrderInfo.model_validate(body) if code == "SUCCESS" else None)


@pytest.mark.parametrize("status,kind", [
    (2, OutcomeKind.PAID), (3, OutcomeKind.PAID), (9, OutcomeKind.DECLINED),
    (0, OutcomeKind.UNSETTLED), (1, OutcomeKind.UNSETTLED), (7, OutcomeKind.UNSETTLED),
    (None, OutcomeKind.UNSETTLED),
])
def test_a_purchase_reply_is_classified_by_its_status(status: int | None,
                                                      kind: OutcomeKind) -> None:
    outcome = outcome_of_purchase(reply(status=status))
    assert outcome.kind is kind and outcome.source is Source.PURCHASE
    assert (outcome.claims.mch_order_no, outcome.claims.amount, outcome.claims.mch_id) == (
        "K-1", 1900, "10000701")


@pytest.mark.parametrize("msg", ["Restricted merchant category", "currency not allowed by issuer",
                                 "missing funds", "sign of fraud"])
def test_a_status_9_is_a_decline_whatever_the_words_say(msg: str) -> None:
    assert outcome_of_purchase(reply(msg=msg, status=9)).kind is OutcomeKind.DECLINED


def test_a_refused_purchase_is_rejected_and_carries_no_claims() -> None:
    outcome = outcome_of_purchase(reply("FAIL", "sign error: sign does not match"))
    assert outcome.kind is OutcomeKind.REJECTED and outcome.claims.amount is None


def test_query_answers() -> None:
    found = GatewayReply("cc_query", "SUCCESS", "", OrderInfo.model_validate(
        {"mchOrderNo": "K-1", "amount": 1900, "currency": "CAD", "status": 2}))
    assert outcome_of_query(found).kind is OutcomeKind.PAID
    missing = GatewayReply[OrderInfo]("cc_query", "FAIL", "order not found", None)
    assert outcome_of_query(missing).kind is OutcomeKind.NOT_FOUND
    other = GatewayReply[OrderInfo]("cc_query", "FAIL", "merchant not found", None)
    assert outcome_of_query(other).kind is OutcomeKind.NO_ANSWER


def test_a_notify_keeps_its_claims_including_an_echoed_card_id() -> None:
    notify = OrderInfo.model_validate({"mchOrderNo": "K-1", "amount": 1, "currency": "CAD",
                                       "status": 2, "cardId": "C-9"})
    outcome = outcome_of_notify(notify)
    assert outcome.source is Source.NOTIFY and outcome.claims.card_id == "C-9"


def test_exceptions_say_what_they_prove_about_sending() -> None:
    assert outcome_of_error(GatewayNotSent("x", endpoint="e")).kind is OutcomeKind.NOT_SENT
    assert outcome_of_error(GatewayOutcomeUnknown("x", endpoint="e")).kind is OutcomeKind.UNKNOWN
    assert outcome_of_error(GatewayRequestInvalid("bad")).kind is OutcomeKind.REJECTED
    odd = outcome_of_error(RuntimeError("6250947000000014 leaked"))
    assert odd.kind is OutcomeKind.UNKNOWN and odd.reason == "RuntimeError"
