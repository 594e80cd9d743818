"""Verifying inbound notifies: the only message from IOTPay that may move an invoice to paid.

``verify_notify`` checks, in order: the body is a JSON object (``NotifyMalformed``, also for bodies
the parser chokes on); the fields the engine needs and ``sign`` are present
(``NotifyMissingFields``); the sign, recomputed over *every* field received, including fields added
after this code was written, matches in constant time (``NotifyBadSign``; ``NotifyMalformed`` if
no sign can be computed over them); the notify is for our merchant (``NotifyWrongMerchant``); the
fields have their documented types (``NotifyMalformed``). The caller then checks the claim against
its stored attempt (mchOrderNo, amount, currency), stores it under ``dedupe_key`` (a digest of
everything it asserts) and only then answers ``SUCCESS``; see ``docs/gateway.md``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import Field, SecretStr, ValidationError

from billing.gateway.errors import (
    NotifyBadSign,
    NotifyMalformed,
    NotifyMissingFields,
    NotifyWrongMerchant,
)
from billing.gateway.replies import OrderInfo
from billing.gateway.sign import verify_sign

__all__ = ["NOTIFY_ACK", "REQUIRED_NOTIFY_FIELDS", "Notify", "dedupe_key", "verify_notify"]

NOTIFY_ACK = "SUCCESS"
"""The exact plain-text body (HTTP 200) that tells IOTPay to stop redelivering."""

REQUIRED_NOTIFY_FIELDS = (
    "payOrderId",
    "mchId",
    "mchOrderNo",
    "amount",
    "currency",
    "payType",
    "status",
    "sign",
)


class Notify(OrderInfo):
    """A verified notify: the order fields typed, plus ``fields``, the raw object as received
    (sign included) for storing verbatim."""

    pay_order_id: str
    mch_id: str
    mch_order_no: str
    amount: int
    currency: str
    pay_type: str
    status: int
    fields: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)


def verify_notify(raw_body: bytes, key: str | SecretStr, mch_id: str) -> Notify:
    """Parse and authenticate one notify body; raises a ``NotifyError`` subclass on any doubt."""
    doc = _parse(raw_body)
    missing = tuple(name for name in REQUIRED_NOTIFY_FIELDS if doc.get(name) in (None, ""))
    if missing:
        raise NotifyMissingFields(missing)
    if not _signed(doc, key):
        raise NotifyBadSign("notify sign does not verify with the merchant key")
    if str(doc["mchId"]) != mch_id:
        raise NotifyWrongMerchant("notify is for another merchant")
    try:
        notify = Notify.model_validate(doc)
    except ValidationError as exc:
        names = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise NotifyMalformed(f"notify fields have the wrong type: {names}") from None
    return notify.model_copy(update={"fields": dict(doc)})


def _parse(raw_body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or ``NotifyMalformed``.

    Anyone can post here, so every way the parser can fail is the sender's fault, not an outage:
    ``ValueError`` (not JSON, bad UTF-8, an integer of over 4300 digits) and ``RecursionError``
    (arrays nested thousands deep). Letting one escape would answer 503, inviting the gateway to
    resend junk forever, and log an ERROR for it.
    """
    try:
        doc = json.loads(raw_body)
    except (ValueError, RecursionError):
        raise NotifyMalformed("notify body is not JSON") from None
    if not isinstance(doc, dict):
        raise NotifyMalformed("notify body is not a JSON object")
    return doc


def _signed(doc: dict[str, Any], key: str | SecretStr) -> bool:
    """Whether the sign verifies, or ``NotifyMalformed`` if no sign can be computed over ``doc``.

    Valid JSON may still hold text that is not Unicode (an escaped lone surrogate, ``"\\ud800"``),
    which can't be encoded to the UTF-8 the MD5 is taken over, and nested values are re-serialized
    to be signed, which can recurse too deep. IOTPay could not have signed either.
    """
    try:
        return verify_sign(doc, key)
    except (UnicodeError, RecursionError, ValueError):
        raise NotifyMalformed("notify fields cannot be signed (not Unicode text, or nested too "
                              "deep)") from None


def dedupe_key(notify: Notify) -> str:
    """The unique key a notify is stored under: its ``payOrderId`` and a digest of every field it
    asserts (all but ``sign``, canonically ordered). A redelivery of the same notify collides and
    is acknowledged without effect; a notify that asserts anything else (another amount, status,
    order) is a new row, so a forged or confused notify stored first can never make the genuine
    one look like a duplicate."""
    asserted = {k: v for k, v in notify.fields.items() if k != "sign"}
    canonical = json.dumps(asserted, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{notify.pay_order_id[:30]}:{digest}"
