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

Whole invoices are checked, never part of one: ``watched_orders`` picks up to ``limit`` invoices
(those whose watched orders were asked least recently first, so the ones a tick could not clear
do not starve the rest) and then every watched order of each. One invoice whose check raises
(a bug, a reply nobody expected) is recorded with the project's per-item isolation
(``alert.tick_item_failed``, kind ``watched.invoice``, backed off) and only that invoice waits;
the others are checked and charged. A watched page past its window that is still processing or
cannot be asked stays watched, and ``alert.pay_now_watch_overdue`` asks a person to look.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from itertools import groupby

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session, aliased

from billing.domain.payments import (
    AttemptDecision,
    AttemptSource,
    AttemptState,
    Outcome,
    OutcomeKind,
    Source,
    watch_ends,
)
from billing.gateway import GatewayError, outcome_of_query
from billing.services.alerts import raise_alert, resolve_alert
from billing.services.isolation import clear_failures, not_backed_off, record_failure
from billing.services.payments import apply_outcome
from billing.services.ports import Deps
from billing.store.models import Invoice, PaymentAttempt
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)

KIND = "watched.invoice"
"""The isolation kind of an invoice whose watched orders could not be checked."""


def has_watched() -> ColumnElement[bool]:
    """SQL: the invoice (``Invoice``) has a watched pay-now order."""
    return exists().where(PaymentAttempt.invoice_id == Invoice.id,
                          PaymentAttempt.state == AttemptState.WATCHED)


def watched_orders(deps: Deps, invoice_filter: list[ColumnElement[bool]], limit: int,
                   at: datetime | None = None) -> list[tuple[int, int, str]]:
    """(attempt id, invoice id, order number) of every watched order of up to ``limit``
    matching invoices: the limit counts invoices, so none is cut in half. Invoices waiting out
    a failure of their own check are left out; the least recently asked come first."""
    at = at or deps.clock.now()
    w = aliased(PaymentAttempt)  # the filter's own EXISTS over attempts must not correlate
    with UnitOfWork(deps.store) as uow:
        oldest = func.min(w.next_check_at)
        invoice_ids = list(uow.session.scalars(
            select(Invoice.id).join(w, w.invoice_id == Invoice.id)
            .where(w.state == AttemptState.WATCHED, not_backed_off(KIND, Invoice.id, at),
                   *invoice_filter)
            .group_by(Invoice.id).order_by(oldest, Invoice.id).limit(limit)))
        if not invoice_ids:
            return []
        rows = uow.session.execute(
            select(w.id, w.invoice_id, w.mch_order_no)
            .where(w.state == AttemptState.WATCHED, w.invoice_id.in_(invoice_ids))
            .order_by(w.invoice_id, w.id))
        return [(int(a), int(i), str(o)) for a, i, o in rows]


def check_watched(deps: Deps, orders: Collection[tuple[int, int, str]], *,
                  tick: str = "collect", at: datetime | None = None) -> set[int]:
    """Query each watched order and apply the answer; returns the ids of the invoices whose
    every watched order was answered (the others must not be charged now). ``orders`` must
    hold all the watched orders of each invoice in it (``watched_orders`` does)."""
    at = at or deps.clock.now()
    cleared: set[int] = set()
    for invoice_id, group in groupby(sorted(orders, key=lambda o: (o[1], o[0])),
                                     key=lambda o: o[1]):
        try:
            answered = all([_check_one(deps, attempt_id, number)
                            for attempt_id, _, number in group])
        except Exception as exc:  # this invoice only: the others are still checked and charged
            record_failure(deps, tick, KIND, invoice_id, at, exc, invoice_id=invoice_id)
            continue
        if answered:
            cleared.add(invoice_id)
            _forget_failures(deps, invoice_id, at)
    return cleared


def _check_one(deps: Deps, attempt_id: int, number: str) -> bool:
    """Ask about one watched order and apply the answer; False if the gateway could not say."""
    try:
        outcome = outcome_of_query(deps.gateway.cc_query(mch_order_no=number))
    except GatewayError as exc:
        outcome = Outcome(OutcomeKind.NO_ANSWER, Source.QUERY, reason=type(exc).__name__)
    if outcome.kind is OutcomeKind.NO_ANSWER:
        log.warning("watched pay-now order %s could not be checked: %s", number,
                    outcome.reason)
    _apply(deps, attempt_id, outcome)
    return outcome.kind is not OutcomeKind.NO_ANSWER


def _forget_failures(deps: Deps, invoice_id: int, at: datetime) -> None:
    with UnitOfWork(deps.store) as uow:
        clear_failures(uow.session, KIND, [invoice_id], at)
        uow.commit()


def check_invoice(deps: Deps, invoice_id: int) -> bool:
    """Before a new pay-now on ``invoice_id``: query its watched orders; False if one could not
    be asked (the click must not open a second page that might be paid twice)."""
    orders = watched_orders(deps, [Invoice.id == invoice_id], 1)
    if not orders:  # none, or its last check failed and is backed off: ask if any is watched
        return not _any_watched(deps, invoice_id)
    return invoice_id in check_watched(deps, orders, tick="pay_now")


def _any_watched(deps: Deps, invoice_id: int) -> bool:
    with UnitOfWork(deps.store) as uow:
        return uow.session.scalar(select(PaymentAttempt.id).where(
            PaymentAttempt.invoice_id == invoice_id,
            PaymentAttempt.state == AttemptState.WATCHED).limit(1)) is not None


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
        at = deps.clock.now()
        alert_if_overdue(session, attempt, apply_outcome(session, attempt, outcome, at,
                                                         deps.config), at)
        uow.commit()


def alert_if_overdue(session: Session, attempt: PaymentAttempt, decision: AttemptDecision,
                     at: datetime) -> None:
    """A watched page past its window still processing or unanswered (``decision.overdue``):
    it stays watched, and a person is asked once to look (resolve it with IOTPay's support or
    the merchant dashboard); the alert repeats daily while it lasts (``raise_alert``) and is
    resolved when the attempt finally ends."""
    if not decision.overdue:
        if decision.state is not AttemptState.WATCHED and _past_watch(attempt, at):
            # It ended at last (paid, declined, not found): the person need not look any more.
            resolve_alert(session, at, f"pay_now_watch_overdue:{attempt.mch_order_no}")
        return
    raise_alert(session, at, "alert.pay_now_watch_overdue",
                f"pay_now_watch_overdue:{attempt.mch_order_no}",
                invoice_id=attempt.invoice_id, mch_order_no=attempt.mch_order_no,
                reason=decision.reason)


def _past_watch(attempt: PaymentAttempt, at: datetime) -> bool:
    """A pay-now attempt whose watch window is over (only those can carry the overdue alert,
    so the common outcome pays no alert lookup)."""
    return attempt.source == AttemptSource.PAY_NOW and attempt.expires_at is not None and (
        at >= watch_ends(attempt.expires_at, at))
