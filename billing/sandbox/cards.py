"""Test cards: numbers whose behaviour the sandbox guarantees, like Stripe's ``4242...``.

All are 16-digit UnionPay-range (62) numbers that pass the Luhn check. Any other Luhn-valid number
behaves like ``APPROVE``; a number failing Luhn (``INVALID_NUMBER``) is refused when it is added
(``retCode=FAIL``, "invalid card number"). A card whose stored ``expiryDate`` (MMYY) is before the
sandbox clock's month is declined "Expired card" whatever its number.

Hard declines (retrying the same card cannot succeed): expired card, invalid card number.
Soft declines (may succeed later, dunning retries them): insufficient funds, do not honor,
exceeds amount limit. The engine tells them apart by fields, not by these messages: an order on
an expired card reports an ``expiryDate`` in the past (``DECLINE_EXPIRED_CARD`` reports last
month's, as an issuer that expired the card would), and only that makes a decline hard.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "AMOUNT_LIMIT",
    "APPROVE",
    "APPROVE_UP_TO_100",
    "DECLINE_DO_NOT_HONOR",
    "DECLINE_EXPIRED_CARD",
    "DECLINE_INSUFFICIENT_FUNDS",
    "DECLINE_RESTRICTED_MERCHANT",
    "DECLINE_TWICE_THEN_APPROVE",
    "FLAKY_DECLINES",
    "INVALID_NUMBER",
    "PENDING_THEN_APPROVE",
    "TEST_CARDS",
    "Behaviour",
    "TestCard",
    "behaviour_of",
    "card_type",
    "luhn_valid",
]

APPROVE = "6250947000000014"
DECLINE_INSUFFICIENT_FUNDS = "6250947000000022"
DECLINE_EXPIRED_CARD = "6250947000000030"
DECLINE_DO_NOT_HONOR = "6250947000000048"
APPROVE_UP_TO_100 = "6250947000000055"
DECLINE_TWICE_THEN_APPROVE = "6250947000000063"
PENDING_THEN_APPROVE = "6250947000000071"
DECLINE_RESTRICTED_MERCHANT = "6250947000000089"
INVALID_NUMBER = "6250947000000015"

AMOUNT_LIMIT = 10_000
"""``APPROVE_UP_TO_100`` approves amounts up to this many cents (100.00) and declines above."""

FLAKY_DECLINES = 2
"""``DECLINE_TWICE_THEN_APPROVE`` declines this many charges per vaulted card, then approves."""

INSUFFICIENT_FUNDS = "Insufficient funds"
EXPIRED_CARD = "Expired card"
DO_NOT_HONOR = "Do not honor"
RESTRICTED_MERCHANT = "Restricted merchant category"
EXCEEDS_LIMIT = "Exceeds amount limit"
INVALID_CARD = "invalid card number"


class Behaviour(Enum):
    APPROVE = "approve"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED = "expired"
    DO_NOT_HONOR = "do_not_honor"
    RESTRICTED_MERCHANT = "restricted_merchant"
    AMOUNT_LIMIT = "amount_limit"
    FLAKY = "flaky"
    PENDING = "pending"


@dataclass(frozen=True)
class TestCard:
    number: str
    behaviour: Behaviour
    description: str
    decline: str | None  # "hard", "soft" or None when it ends up approving


TEST_CARDS: tuple[TestCard, ...] = (
    TestCard(APPROVE, Behaviour.APPROVE, "always approves", None),
    TestCard(DECLINE_INSUFFICIENT_FUNDS, Behaviour.INSUFFICIENT_FUNDS,
             "declines: Insufficient funds", "soft"),
    TestCard(DECLINE_EXPIRED_CARD, Behaviour.EXPIRED, "declines: Expired card", "hard"),
    TestCard(DECLINE_DO_NOT_HONOR, Behaviour.DO_NOT_HONOR, "declines: Do not honor", "soft"),
    TestCard(DECLINE_RESTRICTED_MERCHANT, Behaviour.RESTRICTED_MERCHANT,
             "declines: Restricted merchant category (a decline whose words sound like a "
             "set-up error)", "soft"),
    TestCard(APPROVE_UP_TO_100, Behaviour.AMOUNT_LIMIT,
             "approves up to 100.00, above declines: Exceeds amount limit", "soft"),
    TestCard(DECLINE_TWICE_THEN_APPROVE, Behaviour.FLAKY,
             "declines the first 2 charges (Insufficient funds), then approves", "soft"),
    TestCard(PENDING_THEN_APPROVE, Behaviour.PENDING,
             "answers status 1 (unknown), settles to 2 later and then notifies", None),
)  # fmt: skip

_BY_NUMBER = {card.number: card.behaviour for card in TEST_CARDS}


def behaviour_of(number: str) -> Behaviour:
    """The test behaviour of a card number; unlisted valid numbers approve."""
    return _BY_NUMBER.get(number, Behaviour.APPROVE)


def luhn_valid(number: str) -> bool:
    """The mod-10 check every real card number passes; catches typos at add time."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_type(number: str) -> str:
    """``V`` or ``M`` as the reference documents; ``UP`` for UnionPay (62), an inferred value."""
    if number.startswith("4"):
        return "V"
    if number.startswith(("51", "52", "53", "54", "55", "2")):
        return "M"
    return "UP"
