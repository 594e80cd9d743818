"""Dunning policy as data: what to send, and what to do, as an unpaid invoice ages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class DunningEmail(StrEnum):
    PAYMENT_FAILED = "payment_failed"
    REMINDER = "reminder"
    FINAL_NOTICE = "final_notice"


class FinalAction(StrEnum):
    CANCEL = "cancel"
    MARK_UNPAID = "mark_unpaid"
    LEAVE_PAST_DUE = "leave_past_due"


@dataclass(frozen=True)
class DunningStep:
    """Send ``email`` once the oldest unpaid invoice is ``after`` old."""

    after: timedelta
    email: DunningEmail


@dataclass(frozen=True)
class DunningPolicy:
    """Named escalation shared by plans: ordered email steps, then a final action."""

    name: str
    steps: tuple[DunningStep, ...]
    final_after: timedelta
    final_action: FinalAction
