"""Alerts: causes that need a person, raised once per cause instead of once per occurrence.

An ``alert.*`` event is written the first time a cause is seen and again at most once a day
while it keeps happening (``REPEAT_AFTER``), so a merchant whose key is wrong gets one alert a
day, not one per charge, and ``billing events --type alert.`` stays readable. The ``alerts``
table keeps every cause with its count.

Alerts are raised inside the transaction of the change that noticed them (a payment outcome, a
notify); the row is inserted with ``ON CONFLICT DO NOTHING`` so two daemons noticing the same
cause at once can never make that transaction fail.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from billing.services.events import record_event
from billing.store.models import Alert

REPEAT_AFTER = timedelta(days=1)
KEY_MAX = 200


def _locked(session: Session, key: str) -> Alert | None:
    return session.scalar(select(Alert).where(Alert.key == key).with_for_update())


def _insert(session: Session, key: str, type_: str, at: datetime, data: dict[str, Any]) -> bool:
    """Insert a new cause unless another transaction just did; True if this one did."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(Alert).values(key=key, type=type_, first_at=at, last_at=at, count=1,
                                data=data).on_conflict_do_nothing(index_elements=["key"])
    # RETURNING, not rowcount: psycopg reports -1 for this statement.
    return session.execute(stmt.returning(Alert.id)).first() is not None


def raise_alert(session: Session, at: datetime, type_: str, key: str, *,
                customer_id: int | None = None, subscription_id: int | None = None,
                invoice_id: int | None = None, **data: Any) -> bool:
    """Count one occurrence of cause ``key``; record an ``alert.*`` event when the cause is new,
    was resolved, or was last reported over a day ago. Returns whether an event was recorded."""
    key = key[:KEY_MAX]
    kept = {k: v for k, v in data.items() if v is not None}
    row = _locked(session, key)
    if row is None and _insert(session, key, type_, at, kept):
        count = 1
    else:
        row = row or _locked(session, key)
        assert row is not None
        row.count += 1
        if row.resolved_at is None and at - row.last_at < REPEAT_AFTER:
            return False
        row.last_at, row.resolved_at, count = at, None, row.count
    record_event(session, at, type_, customer_id=customer_id, subscription_id=subscription_id,
                 invoice_id=invoice_id, alert_key=key, occurrences=count, **kept)
    return True


def resolve_alert(session: Session, at: datetime, key: str) -> None:
    """The cause went away (a failing item succeeded): if it comes back, it alerts at once."""
    row = _locked(session, key[:KEY_MAX])
    if row is not None and row.resolved_at is None:
        row.resolved_at = at
