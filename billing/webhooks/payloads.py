"""What a webhook POST carries: ``{"id", "type", "created", "data": {"object": {...}}}``.

The object names what the event is about (``object``: ``invoice``, ``subscription``...), its
identifiers (our ids, the customer's ``external_id``, the invoice ``number``) and the facts of the
event, money as integer minor units with its ``currency``. Facts are picked by name from the
event's data (``FACTS``), so engine plumbing (worker names, gateway tokens) never leaves.

The body is serialised deterministically (sorted keys, no spaces), and the id is
``evt_<event row id>_<key>``, the key random and fixed when the event is recorded: every retry
of one event to one endpoint sends the same bytes, and every endpoint sees the same id, so a
receiver can drop duplicates by id. The key is there because a database restored from a backup
numbers its next events as the lost ones were numbered: without it, a receiver that remembers
the lost ones would drop new, different events as duplicates.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ID_PREFIX = "evt_"
MONEY = frozenset({"amount", "total", "tax", "credit_applied", "net"})

FACTS: dict[str, tuple[str, ...]] = {
    "customer": (),
    "card": ("number", "expiry"),
    "subscription": ("plan", "version", "status", "quantity", "anchor", "started_at", "before",
                     "after", "cause", "effective", "net", "invoice"),
    "invoice": ("kind", "total", "tax", "credit_applied", "amount", "period_start", "reason",
                "invoices", "cause"),
    "payment": ("amount", "attempt", "reason", "mch_order_no"),
    "refund": ("amount", "credit_note", "mch_refund_no", "reason", "duplicate"),
}


@dataclass(frozen=True)
class Subject:
    """The identifiers an event is about, looked up by the caller in the event's transaction."""

    customer_id: int | None = None
    customer_external_id: str | None = None
    subscription_id: int | None = None
    invoice_id: int | None = None
    invoice_number: str | None = None
    currency: str | None = None
    invoice_total: int | None = None


def new_event_key() -> str:
    """The random part of a public event id, made once per event."""
    return secrets.token_hex(4)


def event_id(row_id: int, key: str) -> str:
    """The public, stable id of internal event row ``row_id`` with its ``key``."""
    return f"{ID_PREFIX}{row_id}_{key}"


def build_object(public_type: str, internal: str, subject: Subject,
                 data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data.object`` of an event of ``public_type``."""
    noun = public_type.split(".", 1)[0]
    obj: dict[str, Any] = {"object": noun}
    ids = {"customer_id": subject.customer_id, "customer_external_id":
           subject.customer_external_id, "subscription_id": subject.subscription_id,
           "invoice_id": subject.invoice_id, "invoice_number": subject.invoice_number}
    obj.update({k: v for k, v in ids.items() if v is not None})
    obj.update({k: data[k] for k in FACTS[noun] if data.get(k) is not None})
    if noun == "payment" and "amount" not in obj and subject.invoice_total is not None:
        obj["amount"] = subject.invoice_total
    if noun == "refund":
        obj["kind"] = internal.split(".", 1)[0]
    if MONEY & obj.keys() and subject.currency is not None:
        obj["currency"] = subject.currency
    return obj


def envelope(public_type: str, created: datetime, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything of the event but its id, as stored on the delivery row."""
    return {"type": public_type, "created": int(created.timestamp()), "data": {"object": obj}}


def body(row_id: int, key: str, stored: Mapping[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed) for the stored envelope of event ``row_id``."""
    full = {"id": event_id(row_id, key), **stored}
    return json.dumps(full, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
