"""Pure decisions of the sandbox: may this card be stored, and what does this charge do.

Kept apart from the books so each rule can be read and tested on its own, with the time passed in.

>>> from datetime import datetime, UTC
>>> from zoneinfo import ZoneInfo
>>> at = datetime(2025, 3, 1, tzinfo=UTC)
>>> decide(Behaviour.AMOUNT_LIMIT, 10_001, 1, "1230", at, ZoneInfo("UTC"))
(9, 'Exceeds amount limit')
>>> decide(Behaviour.APPROVE, 500, 1, "0125", at, ZoneInfo("UTC"))
(9, 'Expired card')
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from billing.sandbox import cards as tc
from billing.sandbox.cards import Behaviour

__all__ = ["card_problem", "decide", "expired"]

_DECLINES = {
    Behaviour.INSUFFICIENT_FUNDS: tc.INSUFFICIENT_FUNDS,
    Behaviour.EXPIRED: tc.EXPIRED_CARD,
    Behaviour.DO_NOT_HONOR: tc.DO_NOT_HONOR,
    Behaviour.RESTRICTED_MERCHANT: tc.RESTRICTED_MERCHANT,
}


def expired(expiry: str | None, at: datetime, zone: ZoneInfo) -> bool:
    """A card is valid through the last day of its MMYY month, in the gateway's time zone."""
    if not expiry:
        return False
    local = at.astimezone(zone)
    return (2000 + int(expiry[2:]), int(expiry[:2])) < (local.year, local.month)


def decide(
    behaviour: Behaviour, amount: int, tries: int, expiry: str | None, at: datetime, zone: ZoneInfo
) -> tuple[int, str]:
    """``(status, reason)`` for one charge: 2 approved, 1 pending (settles later), 9 declined.
    ``tries`` counts charges attempted on this card, this one included."""
    if expired(expiry, at, zone):
        return 9, tc.EXPIRED_CARD
    if behaviour in _DECLINES:
        return 9, _DECLINES[behaviour]
    if behaviour is Behaviour.AMOUNT_LIMIT and amount > tc.AMOUNT_LIMIT:
        return 9, tc.EXCEEDS_LIMIT
    if behaviour is Behaviour.FLAKY and tries <= tc.FLAKY_DECLINES:
        return 9, tc.INSUFFICIENT_FUNDS
    if behaviour is Behaviour.PENDING:
        return 1, ""
    return 2, ""


def card_problem(number: str, expiry: str | None, cvv: str, holder: str) -> str | None:
    """Why a card cannot be stored, as a retMsg; None when it can."""
    if not tc.luhn_valid(number):
        return tc.INVALID_CARD
    if expiry is not None and not _mmyy(expiry):
        return "invalid expiryDate: must be MMYY"
    if not (cvv.isdigit() and 3 <= len(cvv) <= 4):
        return "invalid cvv"
    if not holder.strip():
        return "missing field: holder"
    return None


def _mmyy(text: str) -> bool:
    return len(text) == 4 and text.isdigit() and 1 <= int(text[:2]) <= 12
