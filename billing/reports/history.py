"""What an invoice was at an earlier instant, read from the audit trail.

Columns say what an invoice is now; a report about a past range must see it as it was then, or
last month's report would change each time something happened since. Two facts have no column
for when they happened, so they are read from the events the engine writes with them:

* **written off**: an ``uncollectible`` invoice was written off by the first
  ``invoice.uncollectible`` event of its subscription after it was issued (the engine writes off
  all of a subscription's open invoices at once, in ``lifecycle.apply_event``);
* **suspended**: dunning that ended with ``mark_unpaid`` leaves the invoice open and the
  subscription suspended until paid (a ``dunning.final_action`` event with that action).

Both look-ups go through the events' ``(subscription_id, id)`` index and only for the few
invoices whose status makes them possible.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_

from billing.domain.dunning import FinalAction
from billing.domain.invoices import InvoiceStatus
from billing.domain.subscriptions import OpenInvoices
from billing.reports.sql import Col
from billing.store.models import Event

WRITE_OFF_EVENT = f"invoice.{OpenInvoices.UNCOLLECTIBLE.value}"
FINAL_ACTION_EVENT = "dunning.final_action"
SUSPENDING = FinalAction.MARK_UNPAID.value


def written_off_before(status: Col, subscription_id: Col, issued_at: Col, at: Col | datetime
                       ) -> ColumnElement[bool]:
    """Whether an invoice had been written off (void, or uncollectible) before ``at``."""
    write_off = exists().where(Event.subscription_id == subscription_id,
                               Event.type == WRITE_OFF_EVENT, Event.at >= issued_at, Event.at < at)
    return or_(status == InvoiceStatus.VOID.value, and_(
        status == InvoiceStatus.UNCOLLECTIBLE.value,
        or_(subscription_id.is_(None), write_off)))


def suspended_before(paid_at: Col, subscription_id: Col, dunning_started_at: Col,
                     at: Col | datetime) -> ColumnElement[bool]:
    """Whether an invoice was, at ``at``, unpaid after dunning ended with ``mark_unpaid`` (the
    subscription suspended until paid): its period no longer counts in MRR until it is paid."""
    marked = exists().where(Event.subscription_id == subscription_id,
                            Event.type == FINAL_ACTION_EVENT, Event.at >= dunning_started_at,
                            Event.at < at, Event.data["action"].as_string() == SUSPENDING)
    return and_(dunning_started_at.is_not(None), or_(paid_at.is_(None), paid_at >= at), marked)
