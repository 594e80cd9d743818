"""Inbound notifies: verify, persist raw under a unique key, acknowledge, then apply.

``receive_notification`` is all the HTTP handler does before answering ``SUCCESS``: the sign is
checked over every field received, and the raw body is committed under its ``payOrderId`` and a
digest of everything it asserts, so a redelivery is recognised and acknowledged without effect
while a notify asserting anything different (another amount, say) is a row of its own and can
never shadow the genuine one. ``apply_notification`` runs after the answer; it turns the notify
into an outcome (``billing.gateway.outcomes``) and feeds it to the same state machine as purchase
replies and queries, which checks every claim against the stored attempt (``mchOrderNo``,
``amount``, ``currency``, ``mchId``, the gateway order id once known). A validly signed notify
that does not match is kept as a discrepancy with an alert and changes no invoice. A failure
while applying is written on the row, backed off, and retried by the reconciliation tick.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.domain.payments import AttemptState, Effect, OutcomeKind
from billing.faults import crashpoint
from billing.gateway import Notify, dedupe_key, outcome_of_notify, verify_notify
from billing.services.alerts import raise_alert
from billing.services.isolation import ItemError, clear_failures, not_backed_off, record_failure
from billing.services.payments import apply_outcome
from billing.services.ports import Deps
from billing.services.refunds import apply_refund_notify
from billing.store.models import GatewayNotification, PaymentAttempt
from billing.store.uow import UnitOfWork

KIND = "reconcile.notification"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Received:
    notification_id: int | None
    duplicate: bool
    applied: bool = False
    """Already settled when stored: the notify confirmed an attempt that was final and matched."""


def receive_notification(
    deps: Deps, raw_body: bytes, *, key: str | SecretStr, mch_id: str
) -> Received:
    """Verify and durably store one notify; raises ``NotifyError`` for anything not genuine."""
    notify = verify_notify(raw_body, key, mch_id)
    with UnitOfWork(deps.store) as uow:
        at = deps.clock.now()
        row = GatewayNotification(
            dedupe_key=dedupe_key(notify)[:100], pay_order_id=notify.pay_order_id[:30],
            mch_order_no=notify.mch_order_no[:30], pay_type=notify.pay_type[:10],
            # Decoded as the JSON parser did (a UTF-8 BOM or UTF-16 body is valid JSON), so the
            # stored text parses again when it is applied.
            status=notify.status, raw_body=raw_body.decode(json.detect_encoding(raw_body)),
            received_at=at,
        )
        confirmed = _confirms_final_success(uow.session, notify)
        if confirmed is not None:
            row.processed_at, row.outcome = at, "applied"
        uow.session.add(row)
        try:
            uow.commit()
        except IntegrityError:
            return Received(None, True)
        crashpoint("after_notify_store")
        if confirmed is not None and deps.metrics is not None:
            deps.metrics.notify_lag((at - confirmed).total_seconds())
        return Received(row.id, False, applied=confirmed is not None)


def _confirms_final_success(session: Session, notify: Notify) -> datetime | None:
    """The common case, settled while storing: a paid notify for an attempt the purchase response
    already recorded as succeeded, with the same amount and currency. Applying it would change
    nothing (a succeeded attempt is final), so it is stored as applied and no second transaction
    is spent on it. Returns the attempt's send time (for the lag metric), or None otherwise."""
    if notify.pay_type != "pay" or outcome_of_notify(notify).kind is not OutcomeKind.PAID:
        return None
    row = session.execute(select(
        PaymentAttempt.state, PaymentAttempt.amount, PaymentAttempt.currency,
        PaymentAttempt.sent_at, PaymentAttempt.created_at,
        PaymentAttempt.pay_order_id).where(
        PaymentAttempt.mch_order_no == notify.mch_order_no)).first()
    if row is None:
        return None
    state, amount, currency, sent_at, created_at, pay_order_id = row
    matches = (amount, currency) == (notify.amount, notify.currency) and pay_order_id in (
        None, notify.pay_order_id)
    if state != AttemptState.SUCCEEDED or not matches:
        return None
    return sent_at or created_at


def _discrepancy(session: Session, row: GatewayNotification, at: datetime, why: str,
                 **data: Any) -> None:
    row.outcome = "discrepancy"
    raise_alert(session, at, "alert.notify_discrepancy", f"notify_discrepancy:{row.id}",
                notification_id=row.id, mch_order_no=row.mch_order_no, why=why, **data)


def _apply_payment(session: Session, deps: Deps, row: GatewayNotification, notify: Notify,
                   at: datetime) -> None:
    # Wait for the row, never skip it: the purchase's own record step may hold it right now.
    attempt = session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.mch_order_no == notify.mch_order_no).with_for_update())
    if attempt is None:
        _discrepancy(session, row, at, "no attempt with this mchOrderNo")
        return
    before = attempt.state
    decision = apply_outcome(session, attempt, outcome_of_notify(notify), at, deps.config)
    if decision.effect is Effect.DISCREPANCY:
        _discrepancy(session, row, at, "the notify does not match its attempt",
                     invoice_id=attempt.invoice_id, fields=list(decision.mismatched),
                     expected=attempt.amount, got=notify.amount)
        return
    row.outcome = "applied"
    deps.observe_charge(before, attempt.state, attempt.amount, attempt.currency)
    if deps.metrics is not None:
        sent = attempt.sent_at or attempt.created_at
        deps.metrics.notify_lag((row.received_at - sent).total_seconds())


def apply_notification(deps: Deps, notification_id: int,
                       failed: list[ItemError] | None = None) -> str | None:
    """Apply one stored notify if not yet applied; returns its outcome. A failure is written on
    the row and backed off (``billing.services.isolation``), never raised."""
    crashpoint("before_notify_apply")
    at = deps.clock.now()
    try:
        with UnitOfWork(deps.store) as uow:
            session = uow.session
            row = session.get(GatewayNotification, notification_id, with_for_update=True)
            if row is None or row.processed_at is not None:
                return row.outcome if row else None
            notify = Notify.model_validate(json.loads(row.raw_body))
            if notify.pay_type == "refund":
                row.outcome = apply_refund_notify(session, notify, at, deps.config)
            else:
                _apply_payment(session, deps, row, notify, at)
            row.processed_at, row.error = at, None
            outcome = row.outcome
            clear_failures(session, KIND, [notification_id], at)
            uow.commit()
            return outcome
    except Exception as exc:
        error = record_failure(deps, "reconcile", KIND, notification_id, at, exc,
                               notification_id=notification_id)
        if failed is not None:
            failed.append(error)
        with UnitOfWork(deps.store) as uow:
            stored = uow.session.get(GatewayNotification, notification_id)
            if stored is not None:
                stored.error = error.error[:2000]
                uow.commit()
        return None


def apply_pending_notifications(deps: Deps, *, at: datetime | None = None, limit: int = 500,
                                failed: list[ItemError] | None = None) -> int:
    """Apply stored notifies left unapplied (crash after the answer, or an error)."""
    at = at or deps.clock.now()
    with UnitOfWork(deps.store) as uow:
        ids = list(uow.session.scalars(select(GatewayNotification.id).where(
            GatewayNotification.processed_at.is_(None),
            not_backed_off(KIND, GatewayNotification.id, at))
            .order_by(GatewayNotification.id).limit(limit)))
    for notification_id in ids:
        apply_notification(deps, notification_id, failed)
    return len(ids)
