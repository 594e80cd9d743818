"""One bad item never stops a tick: its error is recorded, it backs off, every other item goes on.

Each tick works on items (subscriptions to renew, invoices to charge, attempts to resolve,
notifications to apply, subscriptions to dunn, cards to warn about). When the work on one item
raises, ``record_failure`` writes what happened where a person will see it (an ``item_failures``
row with the error, an ``alert.tick_item_failed`` event once per item, a metric, a log line with
the id), and the item is left out of its tick's claims until ``retry_at`` (``FAILURE_BACKOFF``:
1 minute growing to a day), so a poison row costs one try per backoff step, not one per tick.
When the item later succeeds, ``clear_failures`` removes the row and resolves the alert.

The fast path pays one extra ``NOT EXISTS`` in each claim and one ``DELETE`` per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.orm import Session

from billing.gateway.masking import redact_pans
from billing.services.alerts import raise_alert, resolve_alert
from billing.services.ports import Deps
from billing.store.models import ItemFailure
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")

FAILURE_BACKOFF: tuple[timedelta, ...] = (
    timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=6), timedelta(days=1),
)
ERROR_MAX = 500


@dataclass(frozen=True)
class ItemError:
    """One item a tick could not work on, for the pass report and ``run-once``'s output."""

    tick: str
    kind: str
    item_id: int
    error: str

    def __str__(self) -> str:
        return f"{self.tick}: {self.kind} {self.item_id}: {self.error}"


def describe(exc: BaseException) -> str:
    """The error as stored and shown: its type and message, card numbers masked."""
    return redact_pans(f"{type(exc).__name__}: {exc}")[:ERROR_MAX]


def retry_delay(failures: int) -> timedelta:
    return FAILURE_BACKOFF[min(max(failures, 1), len(FAILURE_BACKOFF)) - 1]


def not_backed_off(kind: str, item_id: Any, at: datetime) -> ColumnElement[bool]:
    """For a claim's WHERE: the item is not waiting out a failure of its own."""
    return ~exists().where(ItemFailure.kind == kind, ItemFailure.item_id == item_id,
                           ItemFailure.retry_at > at)


def alert_key(tick: str, kind: str, item_id: int) -> str:
    return f"tick_item_failed:{tick}:{kind}:{item_id}"


def record_failure(deps: Deps, tick: str, kind: str, item_id: int, at: datetime,
                   exc: BaseException, **ids: int | None) -> ItemError:
    """Record that ``kind`` ``item_id`` failed in ``tick``, in a transaction of its own (the
    item's own transaction has been rolled back), and back it off."""
    error = describe(exc)
    log.error("tick %s: %s %s failed: %s", tick, kind, item_id, error, exc_info=exc,
              extra={"tick": tick, "item_kind": kind, "item_id": item_id})
    try:
        with UnitOfWork(deps.store) as uow:
            row = uow.session.scalar(select(ItemFailure).where(
                ItemFailure.kind == kind, ItemFailure.item_id == item_id).with_for_update())
            if row is None:
                row = ItemFailure(tick=tick, kind=kind, item_id=item_id, failures=0,
                                  first_at=at, last_at=at, retry_at=at, error=error)
                uow.session.add(row)
            row.failures += 1
            row.tick, row.last_at, row.error = tick, at, error
            row.retry_at = at + retry_delay(row.failures)
            raise_alert(uow.session, at, "alert.tick_item_failed", alert_key(tick, kind, item_id),
                        tick=tick, kind=kind, item_id=item_id, error=error, **ids)
            uow.commit()
    except Exception:  # the database itself is failing: the tick as a whole will say so
        log.exception("could not record the failure of %s %s", kind, item_id)
    if deps.metrics is not None:
        deps.metrics.tick_item_failed(tick)
    return ItemError(tick, kind, item_id, error)


def clear_failures(session: Session, kind: str, item_ids: Iterable[int], at: datetime) -> None:
    """Items of ``kind`` that just succeeded: forget their failures and resolve their alerts."""
    ids = list(item_ids)
    if not ids:
        return
    gone = session.execute(delete(ItemFailure).where(
        ItemFailure.kind == kind, ItemFailure.item_id.in_(ids))
        .returning(ItemFailure.tick, ItemFailure.item_id)).all()
    for tick, item_id in gone:
        resolve_alert(session, at, alert_key(tick, kind, item_id))


def one_by_one(deps: Deps, tick: str, kind: str, ids: Iterable[int], at: datetime,
               work: Callable[[Session, int], T]) -> tuple[list[T], list[ItemError]]:
    """Run ``work`` for each item in a transaction of its own: a batch that failed is redone
    this way, so the one item that raised is found, recorded and backed off, and the rest
    commit. ``work`` locks its row itself (skipping it if another worker holds it)."""
    done: list[T] = []
    failed: list[ItemError] = []
    for item_id in ids:
        try:
            with UnitOfWork(deps.store) as uow:
                result = work(uow.session, item_id)
                clear_failures(uow.session, kind, [item_id], at)
                uow.commit()
            done.append(result)
        except Exception as exc:
            failed.append(record_failure(deps, tick, kind, item_id, at, exc))
    return done, failed


def lock_one(session: Session, model: Any, item_id: int) -> Any:
    """The row, locked for this transaction; ``None`` if gone or held by another worker."""
    stmt = select(model).where(model.id == item_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalar(stmt)
