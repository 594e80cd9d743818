"""Payment attempts: their states, what a gateway answer means for one, and when to look again.

An attempt is committed in ``sending`` before its request leaves, and ends ``succeeded``,
``failed`` (a definite decline) or ``failed_not_sent`` (never reached the gateway). ``pending``
and ``unknown`` are never failures: they are resolved with the gateway's query API on
``RECONCILE_BACKOFF`` before the invoice may get another attempt. See
docs/operations.md and the exactly-once protocol it summarizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum


class AttemptState(StrEnum):
    SENDING = "sending"
    PENDING = "pending"
    UNKNOWN = "unknown"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    FAILED_NOT_SENT = "failed_not_sent"


IN_FLIGHT = frozenset({AttemptState.SENDING, AttemptState.PENDING, AttemptState.UNKNOWN})
FINAL = frozenset({AttemptState.SUCCEEDED, AttemptState.FAILED, AttemptState.FAILED_NOT_SENT})


class DeclineKind(StrEnum):
    HARD = "hard"
    """The card itself is unusable (expired, invalid, lost): no retry until the card changes."""
    SOFT = "soft"
    """Might pass later (funds, limits, issuer busy): retry on the plan's schedule."""


_HARD_WORDS = ("expired", "invalid card", "card not found", "lost", "stolen", "closed",
               "invalid account", "no such card", "restricted card", "pick up")


def classify_decline(reason: str) -> DeclineKind:
    """Hard or soft, from the gateway's decline message.

    >>> classify_decline("Expired card").value
    'hard'
    >>> classify_decline("Insufficient funds").value
    'soft'
    """
    text = reason.lower()
    return DeclineKind.HARD if any(w in text for w in _HARD_WORDS) else DeclineKind.SOFT


class OrderStatus(IntEnum):
    """The gateway's order ``status`` codes."""

    PENDING = 0
    UNKNOWN = 1
    SUCCESS = 2
    SUCCESS_NOTIFIED = 3
    FAILED = 9


def state_for_status(status: int | None) -> AttemptState:
    """2 and 3 are paid, 9 failed; 0, 1 and anything unexpected stay unresolved (pending)."""
    if status in (OrderStatus.SUCCESS, OrderStatus.SUCCESS_NOTIFIED):
        return AttemptState.SUCCEEDED
    if status == OrderStatus.FAILED:
        return AttemptState.FAILED
    return AttemptState.PENDING


RECONCILE_BACKOFF: tuple[timedelta, ...] = (
    timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=1), timedelta(days=1),
)
"""Delay before the n-th query of an unresolved attempt; daily after the last, forever."""


def next_check(at: datetime, checks_done: int) -> datetime:
    """When to query an unresolved attempt again after ``checks_done`` queries."""
    step = RECONCILE_BACKOFF[min(checks_done, len(RECONCILE_BACKOFF) - 1)]
    return at + step


def order_number(prefix: str, invoice_id: int, attempt_no: int) -> str:
    """The gateway ``mchOrderNo`` of an attempt: unique per database and at most 30 characters.

    ``prefix`` is random per installation, so two databases (or a rebuilt one) never reuse an
    order number the gateway has already charged.

    >>> order_number("K3F9QZ", 123, 1)
    'K3F9QZ-000000123-01'
    """
    number = f"{prefix}-{invoice_id:09d}-{attempt_no:02d}"
    if len(number) > 30:
        raise ValueError(f"order number {number!r} exceeds 30 characters")
    return number


@dataclass(frozen=True)
class SendOutcome:
    """What one purchase call established, in the vocabulary of attempt states."""

    state: AttemptState
    gateway_status: int | None = None
    pay_order_id: str | None = None
    reason: str | None = None
    decline_kind: DeclineKind | None = None
    lease_until: datetime | None = None
    """The send lease the sender held. A "not sent" only speaks for that sender: once another
    worker has taken the attempt over (a newer lease), that worker may have sent it."""
