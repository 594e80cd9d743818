"""Writing the audit trail: every state change adds one event row in the same transaction.

An event with a public type also queues its webhook deliveries there
(``billing.services.webhooks.queue_deliveries``), so the merchant's app hears of exactly the
changes that were committed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from billing.services.webhooks import queue_deliveries
from billing.store.models import Event


def record_event(
    session: Session,
    at: datetime,
    type_: str,
    *,
    customer_id: int | None = None,
    subscription_id: int | None = None,
    invoice_id: int | None = None,
    **data: Any,
) -> Event:
    """Add an event to the session; it commits or rolls back with the change it describes."""
    event = Event(
        at=at, type=type_, customer_id=customer_id, subscription_id=subscription_id,
        invoice_id=invoice_id, data={k: v for k, v in data.items() if v is not None},
    )
    session.add(event)
    queue_deliveries(session, event)
    return event
