"""Applying the subscription decision table to rows, and restarting billing after a gap.

The rules live in ``billing.domain.subscriptions`` (``decide``); ``apply_event`` is the one
function through which every status change in the engine goes: it writes the new status and its
audit event, does what the decision says to the subscription's open invoices (stop collecting,
write off, collect again), raises the decision's alert, and restarts billing where asked. Engine
events never raise here; a merchant's command that the table refuses raises ``Conflict``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.domain.calendar import local_date, start_of_local_day
from billing.domain.invoices import InvoiceStatus
from billing.domain.subscriptions import (
    COMMANDS,
    Decision,
    Event,
    LifecyclePolicy,
    OpenInvoices,
    Status,
    decide,
)
from billing.errors import Conflict
from billing.services.alerts import raise_alert
from billing.services.emails import queue_subscription_canceled
from billing.services.events import record_event
from billing.services.outbox import drop_unsent_dunning
from billing.services.ports import EngineConfig
from billing.store.models import Invoice, Subscription


def apply_event(session: Session, sub: Subscription, event: Event, at: datetime,
                policy: LifecyclePolicy | None = None, *, config: EngineConfig | None = None,
                **data: Any) -> Decision:
    """Apply ``event`` to ``sub`` at ``at``; ``Conflict`` only for a refused merchant command.
    With ``config``, a subscription that becomes canceled queues the customer's email."""
    before = Status(sub.status)
    decision = decide(before, event, policy or LifecyclePolicy())
    if decision.refused is not None:
        assert event in COMMANDS, f"the engine's own event {event} was refused"
        raise Conflict(f"subscription {sub.id}: {decision.refused}")
    if decision.after is not before:
        sub.status, sub.updated_at = decision.after, at
        record_event(session, at, "subscription.status_changed", subscription_id=sub.id,
                     customer_id=sub.customer_id, before=before.value,
                     after=decision.after.value, cause=event.value, **data)
        if decision.after is Status.CANCELED:
            sub.canceled_at, sub.next_renewal_at = at, None
            if config is not None:
                queue_subscription_canceled(session, config, sub, at)
    _open_invoices(session, sub, decision.open_invoices, at, event)
    if decision.alert is not None:
        raise_alert(session, at, "alert.subscription_event", f"{event.value}:{sub.id}",
                    subscription_id=sub.id, customer_id=sub.customer_id, status=before.value,
                    event=event.value, why=decision.alert, **data)
    if decision.restart_billing:
        restart_billing(session, sub, at)
    return decision


def _open_invoices(session: Session, sub: Subscription, fate: OpenInvoices, at: datetime,
                   event: Event) -> None:
    if fate is OpenInvoices.UNCHANGED:
        return
    invoices = list(session.scalars(select(Invoice).where(
        Invoice.subscription_id == sub.id, Invoice.status == InvoiceStatus.OPEN)
        .order_by(Invoice.id).with_for_update()))
    changed = []
    for invoice in invoices:
        if fate is OpenInvoices.RESUME_COLLECTING:
            if invoice.next_attempt_at is None and not invoice.hard_declined and (
                    not invoice.dunning_final_done):
                invoice.next_attempt_at = at
                changed.append(invoice.number)
            continue
        stopped = invoice.next_attempt_at is not None or fate is OpenInvoices.UNCOLLECTIBLE
        invoice.next_attempt_at = None
        if sub.status == Status.CANCELED:
            invoice.dunning_final_done = True  # nothing more will ever be sent about it
        if fate is OpenInvoices.UNCOLLECTIBLE:
            invoice.status = InvoiceStatus.UNCOLLECTIBLE
        if stopped:
            changed.append(invoice.number)
    if fate is not OpenInvoices.RESUME_COLLECTING:
        drop_unsent_dunning(session, [i.id for i in invoices])
    if changed:
        record_event(session, at, f"invoice.{fate.value}", subscription_id=sub.id,
                     customer_id=sub.customer_id, invoices=changed, cause=event.value)


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
