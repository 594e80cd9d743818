"""Which internal events the merchant's app hears about, under which public type.

The engine's audit trail (``events``) has many kinds, some of them plumbing (a payment attempt
started, a dunning email queued). Webhooks publish a stable, smaller vocabulary: ``MAPPING`` says
which internal kind becomes which public type, and ``render_table`` prints it for
docs/webhooks.md (a test keeps the two the same). A subscription's status change is one internal
kind whose public type depends on the status it moved to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    internal: str
    public: str
    when: str = ""
    """``after=<status>`` to match a status change's new status; empty: always."""
    meaning: str = ""

    def matches(self, kind: str, data: Mapping[str, Any]) -> bool:
        if kind != self.internal:
            return False
        if not self.when:
            return True
        key, _, value = self.when.partition("=")
        return str(data.get(key)) == value


MAPPING: tuple[Rule, ...] = (
    Rule("customer.created", "customer.created", meaning="a customer was added"),
    Rule("card.activated", "card.added", meaning="a card was saved and is now used for charges"),
    Rule("card.expiring_notice", "card.expiring",
         meaning="the customer's card expires soon (they were emailed)"),
    Rule("subscription.created", "subscription.created", meaning="a subscription started"),
    Rule("subscription.plan_changed", "subscription.plan_changed",
         meaning="plan or quantity changed now"),
    Rule("subscription.plan_switched", "subscription.plan_changed",
         meaning="a change scheduled for the renewal took effect"),
    Rule("subscription.cancel_scheduled", "subscription.cancel_scheduled",
         meaning="it will be canceled at the end of the period"),
    Rule("subscription.status_changed", "subscription.past_due", "after=past_due",
         "a renewal payment failed; dunning started"),
    Rule("subscription.status_changed", "subscription.unpaid", "after=unpaid",
         "dunning ended without payment; service stopped"),
    Rule("subscription.status_changed", "subscription.canceled", "after=canceled",
         "canceled (now, at period end, or by dunning)"),
    Rule("subscription.status_changed", "subscription.paused", "after=paused", "paused"),
    Rule("subscription.status_changed", "subscription.active", "after=active",
         "active again: trial over, resumed, or paid after past due"),
    Rule("invoice.issued", "invoice.issued", meaning="an invoice was issued"),
    Rule("invoice.paid", "invoice.paid", meaning="an invoice was paid in full"),
    Rule("invoice.uncollectible", "invoice.marked_uncollectible",
         meaning="open invoices were written off"),
    Rule("payment.succeeded", "payment.succeeded", meaning="a charge succeeded"),
    Rule("payment.declined", "payment.failed", meaning="the card was declined"),
    Rule("payment.refused", "payment.failed", meaning="the gateway refused the charge"),
    Rule("payment.no_card", "payment.failed", meaning="no card on file to charge"),
    Rule("refund.succeeded", "refund.succeeded", meaning="a refund went through"),
    Rule("void.succeeded", "refund.succeeded", meaning="a same-day void went through"),
    Rule("refund.failed", "refund.failed", meaning="a refund failed"),
    Rule("void.failed", "refund.failed", meaning="a void failed"),
)

PUBLIC_TYPES: tuple[str, ...] = tuple(sorted({rule.public for rule in MAPPING}))


def public_type(kind: str, data: Mapping[str, Any]) -> str | None:
    """The public type of internal event ``kind`` with ``data``; ``None``: not published."""
    for rule in MAPPING:
        if rule.matches(kind, data):
            return rule.public
    return None


def check_types(names: Iterable[str]) -> list[str]:
    """``names`` as a sorted list without duplicates; ``ValueError`` naming an unknown one."""
    chosen = sorted({n.strip() for n in names if n.strip()})
    for name in chosen:
        if name not in PUBLIC_TYPES:
            raise ValueError(f"unknown event type {name!r}; known: {', '.join(PUBLIC_TYPES)}")
    return chosen


def render_table() -> str:
    """The mapping as a Markdown table, as docs/webhooks.md prints it."""
    lines = ["| public type | internal event | when | means |", "|---|---|---|---|"]
    for rule in sorted(MAPPING, key=lambda r: (r.public, r.internal, r.when)):
        when = f"`{rule.when}`" if rule.when else ""
        lines.append(f"| `{rule.public}` | `{rule.internal}` | {when} | {rule.meaning} |")
    return "\n".join(lines)
