"""What an order ``status`` means for the engine.

Status codes (IOTPay notes): 0 pending, 1 unknown, 2 success, 3 success and merchant notified,
9 failed. Only 9 is a failure; 0, 1, a missing status and any code not listed here are *unsettled*
and must be resolved with ``cc_query`` later, never treated as a decline (charging again while an
order is unsettled is how customers get charged twice).

Whether a decline is hard or soft is decided from fields (the card's expiry), never from the
``retMsg`` wording: see ``billing.domain.payments.decline_kind``.
"""

from __future__ import annotations

from billing.domain.payments import OrderStatus

__all__ = [
    "OrderStatus",
    "is_failed",
    "is_paid",
    "is_unsettled",
]

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
