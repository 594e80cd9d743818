"""``explain``: the rules behind an invoice's amount and its state, read back from what was stored.

Support staff answer "why was I charged this?" with it. Nothing is recomputed from today's
catalog: the amount is explained from the invoice's own rows (lines, credit applied, tax lines
with the rates they were computed at) and the subscription's events up to the issue (which plan
version it was on, its anchor, plan changes); the state from the audit trail (every event about
the invoice), its payment attempts with their source (purchase reply, notify, query, resend),
the notifies received for them (applied, or a discrepancy), dunning emails and refunds.

Two parts, both lists of ``Step``: ``amount`` is the rule chain in the order the engine applied
it (plan, period, lines, credit, taxes, total); ``history`` is what happened, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.domain.invoices import InvoiceStatus
from billing.domain.money import Money
from billing.services.documents import find_invoice
from billing.store.models import (
    Customer,
    Event,
    GatewayNotification,
    Invoice,
    OutboxMessage,
    PaymentAttempt,
    Plan,
    PlanVersion,
    Refund,
    Subscription,
)
from billing.store.uow import UnitOfWork


@dataclass(frozen=True)
class Step:
    topic: str
    """``plan``, ``period``, ``line``, ``credit``, ``tax``, ``total``; ``event``, ``attempt``,
    ``notify``, ``email``, ``refund``, ``status``."""
    text: str
    at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Explanation:
    invoice: str
    customer: str
    status: str
    currency: str
    total: int
    amount: tuple[Step, ...]
    history: tuple[Step, ...]
    verdict: str
    """Why the invoice is in its state, in one sentence."""


def _m(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def _version_at(session: Session, sub: Subscription, until_event: int | None) -> \
        PlanVersion | None:
    """The plan version the subscription was on when the invoice was issued: its creation's
    version, moved by every switch or change recorded before the invoice's own event."""
    events = session.scalars(select(Event).where(
        Event.subscription_id == sub.id,
        Event.type.in_(("subscription.created", "subscription.imported",
                        "subscription.plan_switched", "subscription.plan_changed")),
        *([Event.id < until_event] if until_event is not None else []))
        .order_by(Event.id))
    version: PlanVersion | None = None
    for event in events:
        if "to_version" in event.data:
            version = session.get(PlanVersion, int(event.data["to_version"]))
        elif "version" in event.data:
            version = session.scalar(select(PlanVersion).where(
                PlanVersion.plan_id == sub.plan_id,
                PlanVersion.version == int(event.data["version"])))
    return version or session.get(PlanVersion, sub.plan_version_id)


def _plan_steps(session: Session, invoice: Invoice, issued: Event | None) -> list[Step]:
    if invoice.subscription_id is None:
        return [Step("plan", f"a {invoice.kind} invoice of no subscription")]
    sub = session.get(Subscription, invoice.subscription_id)
    assert sub is not None
    version = _version_at(session, sub, issued.id if issued else None)
    plan = session.get(Plan, version.plan_id) if version else None
    steps = []
    if version is not None and plan is not None:
        steps.append(Step("plan", f"subscription {sub.id}: plan {plan.code} v{version.version}, "
                          f"{_m(version.price, version.currency)} every "
                          f"{version.interval_count} {version.interval_unit}",
                          data={"subscription": sub.id, "plan": plan.code,
                                "version": version.version, "price": version.price,
                                "interval": [version.interval_count, version.interval_unit]}))
    index = f"period {invoice.period_index} " if invoice.period_index is not None else ""
    steps.append(Step("period", f"{index}from {invoice.period_start.isoformat()} to "
                      f"{invoice.period_end.isoformat()}; anchor {sub.anchor_date.isoformat()} "
                      f"in {sub.timezone}",
                      data={"period_index": invoice.period_index,
                            "anchor": sub.anchor_date.isoformat(), "timezone": sub.timezone}))
    return steps


def _line_steps(session: Session, invoice: Invoice) -> list[Step]:
    cur = invoice.currency
    steps = [Step("line", f"{line.kind}: {line.quantity} x {_m(line.unit_amount, cur)} = "
                  f"{_m(line.amount, cur)} ({line.description})",
                  data={"kind": line.kind, "quantity": line.quantity,
                        "unit_amount": line.unit_amount, "amount": line.amount})
             for line in invoice.lines]
    changes: list[Event] = list(session.scalars(select(Event).where(
        Event.subscription_id == invoice.subscription_id,
        Event.type == "subscription.plan_changed"))) if invoice.subscription_id else []
    for event in changes:
        data = event.data
        if data.get("invoice") == invoice.number:
            steps.append(Step("line", f"proration: the plan change at {event.at.isoformat()} "
                              f"nets {_m(int(data.get('net', 0)), cur)} for the rest of the "
                              "period (new terms minus old, exact to the second, rounded once)",
                              event.at, dict(data)))
        elif invoice.number in (data.get("reduced") or {}):
            amount = int(data["reduced"][invoice.number])
            steps.append(Step("line", f"credit of the plan change at {event.at.isoformat()} "
                              f"taken off this open invoice: -{_m(amount, cur)}",
                              event.at, dict(data)))
    return steps


def _money_steps(invoice: Invoice) -> list[Step]:
    cur = invoice.currency
    steps = [Step("line", f"subtotal {_m(invoice.subtotal, cur)} (the sum of the lines)")]
    if invoice.credit_applied:
        steps.append(Step("credit", f"credit balance applied: -{_m(invoice.credit_applied, cur)}"
                          " (the unused part of a period paid before, given back)",
                          data={"credit_applied": invoice.credit_applied}))
    for tax in invoice.taxes:
        steps.append(Step("tax", f"{tax.name} {tax.rate}% ({tax.province}) on "
                          f"{_m(tax.taxable, cur)} = {_m(tax.amount, cur)}, rounded once, "
                          "half a cent up", data={"name": tax.name, "rate": tax.rate,
                                                  "province": tax.province,
                                                  "taxable": tax.taxable, "amount": tax.amount}))
    if not invoice.taxes:
        steps.append(Step("tax", "no tax: the customer has no province, or the catalog no "
                          "taxes for it, when the invoice was issued"))
    steps.append(Step("total", f"total = {_m(invoice.subtotal, cur)} - "
                      f"{_m(invoice.credit_applied, cur)} + {_m(invoice.tax, cur)} = "
                      f"{_m(invoice.total, cur)}; charged: {_m(invoice.amount_paid, cur)}, "
                      f"refunded: {_m(invoice.amount_refunded, cur)}",
                      data={"subtotal": invoice.subtotal, "credit": invoice.credit_applied,
                            "tax": invoice.tax, "total": invoice.total,
                            "paid": invoice.amount_paid, "refunded": invoice.amount_refunded}))
    return steps


def _event_text(event: Event, currency: str) -> str:
    data = dict(event.data)
    words = {k: (_m(v, currency) if k in ("amount", "total", "tax", "net") and isinstance(v, int)
                 else v) for k, v in data.items() if k not in ("number",)}
    return f"{event.type}" + (": " + ", ".join(f"{k}={v}" for k, v in words.items())
                              if words else "")


def _sources(events: list[Event]) -> dict[str, str]:
    """Per order number, where the last fact about it came from (the attempt rows keep the
    state, the events keep the source: purchase reply, notify, query or resend)."""
    return {str(e.data["mch_order_no"]): str(e.data["source"]) for e in events
            if e.type.startswith("payment.") and "source" in e.data and "mch_order_no" in e.data}


def _attempt_steps(session: Session, invoice: Invoice,
                   events: list[Event]) -> tuple[list[Step], list[str]]:
    cur, steps, orders = invoice.currency, [], []
    sources = _sources(events)
    for a in session.scalars(select(PaymentAttempt).where(PaymentAttempt.invoice_id ==
                                                          invoice.id)
                             .order_by(PaymentAttempt.attempt_no)):
        orders.append(a.mch_order_no)
        why = f", {a.decline_kind} decline: {a.failure_reason}" if a.decline_kind else (
            f": {a.failure_reason}" if a.failure_reason else "")
        source = sources.get(a.mch_order_no)
        steps.append(Step("attempt", f"attempt {a.attempt_no} {a.mch_order_no} for "
                          f"{_m(a.amount, cur)}: {a.state}{why}"
                          + (f", learned from the {source}" if source else "")
                          + (f" (payOrderId {a.pay_order_id})" if a.pay_order_id else ""),
                          a.resolved_at or a.created_at,
                          {"attempt": a.attempt_no, "mch_order_no": a.mch_order_no,
                           "amount": a.amount, "state": str(a.state), "source": source,
                           "pay_order_id": a.pay_order_id, "gateway_status": a.gateway_status,
                           "decline_kind": str(a.decline_kind) if a.decline_kind else None,
                           "reason": a.failure_reason, "sent_at": _iso(a.sent_at)}))
    return steps, orders


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _notify_steps(session: Session, orders: list[str]) -> list[Step]:
    if not orders:
        return []
    rows = session.scalars(select(GatewayNotification).where(
        GatewayNotification.mch_order_no.in_(orders)).order_by(GatewayNotification.id))
    return [Step("notify", f"notify ({n.pay_type}) for {n.mch_order_no}, status {n.status}: "
                 f"{n.outcome or 'not applied yet'}" + (f" ({n.error})" if n.error else ""),
                 n.received_at, {"mch_order_no": n.mch_order_no, "pay_order_id": n.pay_order_id,
                                 "status": n.status, "outcome": n.outcome,
                                 "processed_at": _iso(n.processed_at)})
            for n in rows]


def _email_steps(session: Session, invoice: Invoice) -> list[Step]:
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.invoice_id == invoice.id)
                           .order_by(OutboxMessage.id))
    return [Step("email", f"email {m.template} to {m.to_address}: "
                 + (f"sent {m.sent_at.isoformat()}" if m.sent_at else
                    f"not sent yet ({m.attempts} attempts)"),
                 m.created_at, {"template": m.template, "sent_at": _iso(m.sent_at),
                                "subject": m.subject})
            for m in rows]


def _refund_steps(session: Session, invoice: Invoice) -> tuple[list[Step], list[str]]:
    steps, numbers = [], []
    for r in session.scalars(select(Refund).where(Refund.invoice_id == invoice.id)
                             .order_by(Refund.id)):
        numbers.append(r.mch_refund_no)
        note = f", credit note {r.credit_note_number}" if r.credit_note_number else ""
        steps.append(Step("refund", f"{r.kind} {r.mch_refund_no} of "
                          f"{_m(r.amount, invoice.currency)}: {r.state}{note}"
                          + (f" ({r.reason})" if r.reason else ""), r.resolved_at or r.created_at,
                          {"kind": str(r.kind), "mch_refund_no": r.mch_refund_no,
                           "amount": r.amount, "state": str(r.state),
                           "credit_note": r.credit_note_number}))
    return steps, numbers


def _verdict(invoice: Invoice, events: list[Event]) -> str:
    cur = invoice.currency
    last = {e.type: e for e in events}
    if invoice.status == InvoiceStatus.PAID:
        paid = last.get("invoice.paid")
        how = (f" by {paid.data['mch_order_no']}" if paid and "mch_order_no" in paid.data
               else " with no charge (nothing was owed)" if invoice.total == 0 else "")
        refunded = (f"; {_m(invoice.amount_refunded, cur)} refunded"
                    if invoice.amount_refunded else "")
        return f"paid{how} on {_iso(invoice.paid_at)}{refunded}"
    if invoice.status == InvoiceStatus.OPEN:
        if invoice.next_attempt_at is not None:
            return (f"open: {_m(invoice.total - invoice.amount_paid, cur)} owed, next charge "
                    f"at {invoice.next_attempt_at.isoformat()}")
        if invoice.hard_declined:
            return "open: the card was declined for good; waiting for a new card"
        return "open: not being charged now (see the history: paused, canceled or dunning over)"
    fate = last.get(f"invoice.{invoice.status}")
    reason = f" ({fate.data.get('reason')})" if fate and fate.data.get("reason") else ""
    return f"{invoice.status}{reason}: it will not be charged"


def explain_invoice(uow: UnitOfWork, number: str) -> Explanation:
    """Why ``number`` is for this amount and in this state, from its rows and the event log."""
    session = uow.session
    invoice = find_invoice(session, number)
    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None
    events = list(session.scalars(select(Event).where(Event.invoice_id == invoice.id)
                                  .order_by(Event.id)))
    issued = next((e for e in events if e.type == "invoice.issued"), None)
    amount = [*_plan_steps(session, invoice, issued), *_line_steps(session, invoice),
              *_money_steps(invoice)]
    attempts, orders = _attempt_steps(session, invoice, events)
    refunds, refund_numbers = _refund_steps(session, invoice)
    history = [Step("event", _event_text(e, invoice.currency), e.at,
                    {"type": e.type, **dict(e.data)}) for e in events]
    history += attempts + refunds + _notify_steps(session, orders + refund_numbers)
    history += _email_steps(session, invoice)
    history.sort(key=lambda s: (s.at is None, s.at or invoice.issued_at))
    if invoice.dunning_started_at is not None:
        history.append(Step("status", f"in dunning since {invoice.dunning_started_at.isoformat()}"
                            f", step {invoice.dunning_step}"
                            + (", final action done" if invoice.dunning_final_done else ""),
                            data={"dunning_plan": invoice.dunning_plan}))
    return Explanation(invoice.number, customer.external_id, str(invoice.status),
                       invoice.currency, invoice.total, tuple(amount), tuple(history),
                       _verdict(invoice, events))


__all__ = ["Explanation", "Step", "explain_invoice"]
