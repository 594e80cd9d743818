"""Saved cards as the engine knows them: a status and an ``MMYY`` expiry, never a number.

The expiry is the one field that proves a card cannot pay: a card is good through the last day
of its expiry month, so from the first day of the next month every charge on it is a hard decline
and retrying it only costs fees. The month boundary is taken in UTC; being a few hours early or
late at a month's edge changes only whether the last try of that month counts as hard or soft.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from billing.domain.timeutil import to_utc


class CardStatus(StrEnum):
    PENDING = "pending"
    """A cardId is reserved and the hosted page opened; the gateway has not confirmed it."""
    ACTIVE = "active"
    REMOVED = "removed"


def expiry_end(expiry: str) -> date | None:
    """First day after a card's ``MMYY`` expiry month; ``None`` if the value is not MMYY.

    >>> expiry_end("1226")
    datetime.date(2027, 1, 1)
    """
    if len(expiry) != 4 or not (expiry.isascii() and expiry.isdigit()) or not (
            1 <= int(expiry[:2]) <= 12):
        return None
    month, year = int(expiry[:2]), 2000 + int(expiry[2:])
    return date(year + month // 12, month % 12 + 1, 1)


def card_expired(expiry: str, at: datetime) -> bool:
    """Whether a card with this ``MMYY`` expiry can no longer pay at ``at``; unreadable expiries
    prove nothing, so they are not expired."""
    end = expiry_end(expiry)
    return end is not None and to_utc(at).date() >= end
