"""Inbound notifies: verify, persist raw under a unique key, acknowledge, then apply.

``receive_notification`` is all the HTTP handler does before answering ``SUCCESS``: the sign is
checked over every field received, and the raw body is committed under
``payOrderId:payType:status``, so a duplicate is recognised and acknowledged without effect.
``apply_notification`` runs after the answer; it checks the claim against the stored attempt
(``mchOrderNo``, ``amount``, ``currency``; ``mchId`` was checked with the sign) and feeds it to
the same monotonic rules as purchase responses and queries. A validly signed notify that does not
match is kept as a discrepancy with an alert event and changes no invoice. A failure while
applying is written on the row and retried by the reconciliation tick.
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

from billing.domain.payments import AttemptState, SendOutcome, state_for_status
from billing.faults import crashpoint
from billing.gateway import Notify, dedupe_key, verify_notify
from billing.services.events import record_event
from billing.services.payments import apply_outcome
from billing.services.ports import Deps
from billing.services.refunds import apply_refund_notify
from billing.store.models import GatewayNotification, PaymentAttempt
from billing.store.uow import UnitOfWork

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
    if notify.pay_type != "pay" or state_for_status(notify.status) is not AttemptState.SUCCEEDED:
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
    if state != AttemptState.SUCCEEDED.value or not matches:
        return None
    return sent_at or created_at


def _discrepancy(session: Session, row: GatewayNotification, at: datetime, why: str,
                 **data: Any) -> None:
    row.outcome = "discrepancy"
    record_event(session, at, "alert.notify_discrepancy", notification_id=row.id,
                 mch_order_no=row.mch_order_no, why=why, **data)


def _apply_payment(session: Session, deps: Deps, row: GatewayNotification, notify: Notify,
                   at: datetime) -> None:
    # Wait for the row, never skip it: the purchase's own record step may hold it right now.
    attempt = session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.mch_order_no == notify.mch_order_no).with_for_update())
    if attempt is None:
        _discrepancy(session, row, at, "no attempt with this mchOrderNo")
        return
    if notify.amount != attempt.amount or notify.currency != attempt.currency:
        _discrepancy(session, row, at, "amount or currency differs from the attempt",
                     invoice_id=attempt.invoice_id, expected=attempt.amount, got=notify.amount)
        return
    state = state_for_status(notify.status)
    reason = "declined (notify)" if state is AttemptState.FAILED else None
    outcome = SendOutcome(state, notify.status, notify.pay_order_id, reason)
    before = attempt.state
    apply_outcome(session, attempt, outcome, at, deps.config, source="notify")
    row.outcome = "applied"
    deps.observe_charge(before, attempt.state, attempt.amount, attempt.currency)
    if deps.metrics is not None:
        sent = attempt.sent_at or attempt.created_at
        deps.metrics.notify_lag((row.received_at - sent).total_seconds())


def apply_notification(deps: Deps, notification_id: int) -> str | None:
    """Apply one stored notify if not yet applied; returns its outcome."""
    crashpoint("before_notify_apply")
    try:
        with UnitOfWork(deps.store) as uow:
            session = uow.session
            row = session.get(GatewayNotification, notification_id, with_for_update=True)
            if row is None or row.processed_at is not None:
                return row.outcome if row else None
            at = deps.clock.now()
            notify = Notify.model_validate(json.loads(row.raw_body))
            if notify.pay_type == "refund":
                row.outcome = apply_refund_notify(session, notify, at)
            else:
                _apply_payment(session, deps, row, notify, at)
            row.processed_at, row.error = at, None
            outcome = row.outcome
            uow.commit()
            return outcome
    except Exception as exc:
        log.exception("applying notification %s failed", notification_id)
        with UnitOfWork(deps.store) as uow:
            row = uow.session.get(GatewayNotification, notification_id)
            if row is not None:
                row.error = f"{type(exc).__name__}: {exc}"[:2000]
                uow.commit()
        return None


def apply_pending_notifications(deps: Deps, *, limit: int = 500) -> int:
    """Apply stored notifies left unapplied (crash after the answer, or an error)."""
    with UnitOfWork(deps.store) as uow:
        ids = list(uow.session.scalars(select(GatewayNotification.id).where(
            GatewayNotification.processed_at.is_(None)).order_by(GatewayNotification.id)
            .limit(limit)))
    for notification_id in ids:
        apply_notification(deps, notification_id)
    return len(ids)
