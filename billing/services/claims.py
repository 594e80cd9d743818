"""Who works on which row: the database decides, never the scheduler.

On PostgreSQL a claim is ``SELECT ... FOR UPDATE SKIP LOCKED``: rows locked by another process are
skipped, so any number of daemons share the work without waiting on each other. On SQLite every
transaction already holds the write lock from its first statement (``BEGIN IMMEDIATE``), so the
same query is simply serialized. Work that spans a network call additionally sets a lease
(``lease_owner``, ``lease_until``) so a dead worker's rows are taken over once it expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, update
from sqlalchemy.orm import Session

from billing.store.models import Base


def lockable(session: Session, stmt: Select[Any]) -> Select[Any]:
    """Add ``FOR UPDATE SKIP LOCKED`` where the database supports it."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def claim_rows(
    session: Session,
    model: type[Base],
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    limit: int,
) -> list[Any]:
    """Lock and return up to ``limit`` rows matching ``where`` for this transaction."""
    stmt = select(model).where(*where).order_by(*order_by).limit(limit)
    return list(session.scalars(lockable(session, stmt)))


def lease_free(model: Any, at: datetime) -> ColumnElement[bool]:
    """Rows nobody holds, or whose holder's lease has expired."""
    return or_(model.lease_until.is_(None), model.lease_until < at)


def take_lease(
    session: Session, model: Any, ids: Sequence[int], worker: str, until: datetime
) -> None:
    if ids:
        session.execute(
            update(model).where(model.id.in_(ids)).values(lease_owner=worker, lease_until=until)
        )


def lease_until(at: datetime, length: timedelta) -> datetime:
    return at + length


def keep(session: Session, rows: Sequence[Any]) -> None:
    """Hold strong references to ``rows`` for the rest of the transaction.

    The session's identity map is weak: a row loaded once and not referenced is loaded again by
    the next ``session.get``. Batch code preloads what a batch will read with one query per table
    and keeps it here, so the batch costs a handful of statements instead of several per row.
    """
    session.info.setdefault("kept", []).extend(rows)


def hold_locked(session: Session, rows: Sequence[Any]) -> None:
    """Note that this transaction holds ``rows`` locked (``FOR UPDATE``, read in it), so a row
    helper that needs the lock can take it from here instead of asking again, row by row."""
    keep(session, rows)
    session.info.setdefault("locked", set()).update((type(r).__name__, r.id) for r in rows)


def holds_lock(session: Session, model: Any, row_id: int) -> bool:
    return (model.__name__, row_id) in session.info.get("locked", ())


def load_by_id(session: Session, model: Any, ids: set[int]) -> list[Any]:
    """Every row of ``model`` with an id in ``ids``, in one query, kept for the transaction."""
    rows = list(session.scalars(select(model).where(model.id.in_(ids)))) if ids else []
    keep(session, rows)
    return rows
