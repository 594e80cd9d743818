"""The subscription lifecycle as a pure state machine: ``transition(status, event, at)``.

    trialing --first period--> active --charge failed--> past_due --paid--> active
        |                        |  ^                       |
        |                        |  +------ resume ------ paused <-- pause (active, past_due)
        |                        |                          |
        +----------- cancel ---->+----> canceled <----------+-- dunning final action: cancel
                                        unpaid   <-------------- dunning final action: mark_unpaid

``unpaid`` issues no new invoices until the customer pays, then returns to ``active``. Every
transition returns a ``Transition`` the service layer records in the event log; an event that is
not allowed in a status raises ``Conflict`` with a sentence a merchant understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from billing.domain.timeutil import to_utc
from billing.errors import Conflict


class Status(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    PAUSED = "paused"
    CANCELED = "canceled"


class Event(StrEnum):
    PERIOD_STARTED = "period_started"
    PAYMENT_FAILED = "payment_failed"
    PAID_UP = "paid_up"
    DUNNING_CANCEL = "dunning_cancel"
    DUNNING_MARK_UNPAID = "dunning_mark_unpaid"
    DUNNING_LEAVE_PAST_DUE = "dunning_leave_past_due"
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"


_S = Status
_TABLE: dict[Event, dict[Status, Status]] = {
    Event.PERIOD_STARTED: {_S.TRIALING: _S.ACTIVE, _S.ACTIVE: _S.ACTIVE,
                           _S.PAST_DUE: _S.PAST_DUE},
    Event.PAYMENT_FAILED: {_S.TRIALING: _S.PAST_DUE, _S.ACTIVE: _S.PAST_DUE,
                           _S.PAST_DUE: _S.PAST_DUE, _S.UNPAID: _S.UNPAID,
                           _S.PAUSED: _S.PAUSED, _S.CANCELED: _S.CANCELED},
    Event.PAID_UP: {_S.ACTIVE: _S.ACTIVE, _S.PAST_DUE: _S.ACTIVE, _S.UNPAID: _S.ACTIVE,
                    _S.TRIALING: _S.TRIALING, _S.PAUSED: _S.PAUSED, _S.CANCELED: _S.CANCELED},
    Event.DUNNING_CANCEL: {_S.PAST_DUE: _S.CANCELED, _S.ACTIVE: _S.CANCELED,
                           _S.UNPAID: _S.CANCELED},
    Event.DUNNING_MARK_UNPAID: {_S.PAST_DUE: _S.UNPAID, _S.ACTIVE: _S.UNPAID},
    Event.DUNNING_LEAVE_PAST_DUE: {_S.PAST_DUE: _S.PAST_DUE, _S.ACTIVE: _S.PAST_DUE},
    Event.CANCEL: {s: _S.CANCELED for s in Status if s is not _S.CANCELED},
    Event.PAUSE: {_S.ACTIVE: _S.PAUSED, _S.PAST_DUE: _S.PAUSED, _S.TRIALING: _S.PAUSED},
    Event.RESUME: {_S.PAUSED: _S.ACTIVE},
}

BILLABLE = frozenset({Status.TRIALING, Status.ACTIVE, Status.PAST_DUE})
"""Statuses in which renewals issue invoices."""


@dataclass(frozen=True)
class Transition:
    before: Status
    after: Status
    event: Event
    at: datetime

    @property
    def changed(self) -> bool:
        return self.before is not self.after


def transition(status: Status, event: Event, at: datetime) -> Transition:
    """The status after ``event`` at ``at``.

    >>> from datetime import UTC, datetime
    >>> t = transition(Status.ACTIVE, Event.PAYMENT_FAILED, datetime(2026, 1, 1, tzinfo=UTC))
    >>> (t.before.value, t.after.value)
    ('active', 'past_due')
    """
    allowed = _TABLE[event]
    if status not in allowed:
        raise Conflict(f"cannot {event.value.replace('_', ' ')} a subscription that is "
                       f"{status.value.replace('_', ' ')}")
    return Transition(status, allowed[status], event, to_utc(at))
