"""What an order ``status`` and a decline ``retMsg`` mean for the engine.

Status codes (IOTPay notes): 0 pending, 1 unknown, 2 success, 3 success and merchant notified,
9 failed. Only 9 is a failure; 0, 1, a missing status and any code not listed here are *unsettled*
and must be resolved with ``cc_query`` later, never treated as a decline (charging again while an
order is unsettled is how customers get charged twice).

Decline kinds are **inferred**: the reference does not list decline messages. A *hard* decline
(expired, invalid, lost or stolen card) will not succeed on retry with the same card; a *soft* one
(insufficient funds, do not honor, over a limit, anything unrecognised) may succeed later, so
dunning retries it. The phrases matched are the sandbox's plus common acquirer wording.
"""

from __future__ import annotations

from typing import Literal

from billing.domain.payments import DeclineKind as Kind
from billing.domain.payments import OrderStatus, classify_decline

__all__ = [
    "DeclineKind",
    "OrderStatus",
    "decline_kind",
    "is_failed",
    "is_paid",
    "is_unsettled",
]

DeclineKind = Literal["hard", "soft"]

_PAID = frozenset({OrderStatus.SUCCESS, OrderStatus.SUCCESS_NOTIFIED})


def is_paid(status: int | None) -> bool:
    """Status 2 or 3: the money moved."""
    return status in _PAID


def is_failed(status: int | None) -> bool:
    """Status 9: definitely not charged, a new attempt is allowed."""
    return status == OrderStatus.FAILED


def is_unsettled(status: int | None) -> bool:
    """Anything else (0, 1, missing, unknown codes): query later, never charge again meanwhile."""
    return not is_paid(status) and not is_failed(status)


def decline_kind(ret_msg: str) -> DeclineKind:
    """Classify a decline reason with the domain's rule; unknown wording is soft, so no customer
    is dropped by a typo."""
    return "hard" if classify_decline(ret_msg) is Kind.HARD else "soft"
