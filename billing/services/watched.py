"""Watched pay-now orders are looked up before anything else may charge their invoice.

An abandoned hosted page stays payable at the gateway after the engine stopped waiting for it
(``AttemptState.WATCHED``, ``billing.domain.payments``), and its notify may never come. The
reconcile tick looks watched orders up on a backoff; this module is the stricter check taken
right before money could move a second time: before the collection tick commits a scheduled
retry, and before a new pay-now click commits its attempt, every watched order of the invoice
is queried (``cc_query``) and the answer applied. If one turns out paid, the invoice is settled
by it and nothing is sent. If one cannot be asked (the query fails or answers nothing usable),
the invoice is not charged now: a charge that might be the second is never made blindly.

A payment made in the moment between this check and the new attempt's commit is still caught
(the new attempt or the late one is recorded ``duplicate`` and refunded), so this check makes
the double charge rare; it is the duplicate path that keeps it from being silent.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import aliased

from billing.domain.payments import AttemptState, Outcome, OutcomeKind, Source
from billing.gateway import GatewayError, outcome_of_query
from billing.services.payments import apply_outcome
from billing.services.ports import Deps
from billing.store.models import Invoice, PaymentAttempt
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)


def has_watched() -> ColumnElement[bool]:
    """SQL: the invoice (``Invoice``) has a watched pay-now order."""
    return exists().where(PaymentAttempt.invoice_id == Invoice.id,
                          PaymentAttempt.state == AttemptState.WATCHED)


def watched_orders(deps: Deps, invoice_filter: list[ColumnElement[bool]],
                   limit: int) -> list[tuple[int, int, str]]:
    """(attempt id, invoice id, order number) of the watched orders of matching invoices."""
    w = aliased(PaymentAttempt)  # the filter's own EXISTS over attempts must not correlate
    with UnitOfWork(deps.store) as uow:
        rows = uow.session.execute(
            select(w.id, w.invoice_id, w.mch_order_no)
            .join(Invoice, Invoice.id == w.invoice_id)
            .where(w.state == AttemptState.WATCHED, *invoice_filter)
            .order_by(w.id).limit(limit))
        return [(int(a), int(i), str(o)) for a, i, o in rows]


def check_watched(deps: Deps, orders: Collection[tuple[int, int, str]]) -> set[int]:
    """Query each watched order and apply the answer; returns the ids of the invoices whose
    every watched order was answered (the others must not be charged now)."""
    blocked: set[int] = set()
    for attempt_id, invoice_id, number in orders:
        try:
            outcome = outcome_of_query(deps.gateway.cc_query(mch_order_no=number))
        except GatewayError as exc:
            outcome = Outcome(OutcomeKind.NO_ANSWER, Source.QUERY, reason=type(exc).__name__)
        if outcome.kind is OutcomeKind.NO_ANSWER:
            log.warning("watched pay-now order %s could not be checked: %s", number,
                        outcome.reason)
            blocked.add(invoice_id)
        _apply(deps, attempt_id, outcome)
    return {invoice_id for _, invoice_id, _ in orders} - blocked


def check_invoice(deps: Deps, invoice_id: int) -> bool:
    """Before a new pay-now on ``invoice_id``: query its watched orders; False if one could not
    be asked (the click must not open a second page that might be paid twice)."""
    orders = watched_orders(deps, [Invoice.id == invoice_id], 100)
    return not orders or invoice_id in check_watched(deps, orders)


def _apply(deps: Deps, attempt_id: int, outcome: Outcome) -> None:
    """Apply one answer, locking the attempt before its invoice (every writer's order)."""
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        attempt = session.get(PaymentAttempt, attempt_id, with_for_update=True)
        assert attempt is not None
        if attempt.state != AttemptState.WATCHED:
            return  # a notify or the reconcile tick got there first
        invoice = session.get(Invoice, attempt.invoice_id, with_for_update=True)
        assert invoice is not None
        apply_outcome(session, attempt, outcome, deps.clock.now(), deps.config)
        uow.commit()
