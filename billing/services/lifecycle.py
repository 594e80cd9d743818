"""Applying subscription transitions to rows, and restarting billing after a gap.

The rules live in ``billing.domain.subscriptions``; this module writes their result and the
matching audit event, so every status change in the engine goes through one function.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from billing.domain.calendar import local_date, start_of_local_day
from billing.domain.subscriptions import Event, Status, Transition, transition
from billing.services.events import record_event
from billing.store.models import Subscription


def apply_transition(
    session: Session, sub: Subscription, event: Event, at: datetime, **data: Any
) -> Transition:
    """Move ``sub`` by ``event`` (raising ``Conflict`` if not allowed) and log the change."""
    step = transition(Status(sub.status), event, at)
    if step.changed:
        sub.status, sub.updated_at = step.after.value, at
        record_event(session, at, "subscription.status_changed", subscription_id=sub.id,
                     customer_id=sub.customer_id, before=step.before.value,
                     after=step.after.value, cause=event.value, **data)
    return step


def restart_billing(session: Session, sub: Subscription, at: datetime) -> None:
    """Resume issuing invoices after a pause or an unpaid spell.

    If the period paid before the gap is still running, billing simply continues at its end.
    Otherwise the periods that started during the gap are not billed (the customer had no
    service) and the subscription re-anchors on today's local date, so the renewal tick invoices
    the new first period at once. No period is billed twice and none is billed for the gap.
    """
    if sub.next_renewal_at is not None and sub.next_renewal_at > at:
        return
    anchor = local_date(at, sub.timezone)
    record_event(session, at, "subscription.reanchored", subscription_id=sub.id,
                 customer_id=sub.customer_id, old_anchor=sub.anchor_date.isoformat(),
                 new_anchor=anchor.isoformat())
    sub.anchor_date, sub.next_period_index = anchor, 0
    sub.next_renewal_at = start_of_local_day(anchor, sub.timezone)
