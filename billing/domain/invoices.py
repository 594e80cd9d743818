"""The vocabulary of invoices and refunds: their statuses and kinds, typed once.

An invoice is ``open`` until exactly one payment attempt pays it (``paid``), or the engine stops
collecting it for good (``uncollectible``, ``void``). Refunds and voids are corrections of a paid
invoice and each becomes a credit note once it succeeds.
"""

from __future__ import annotations

from enum import StrEnum


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class InvoiceKind(StrEnum):
    RENEWAL = "renewal"
    PRORATION = "proration"
    SETUP = "setup"
    MANUAL = "manual"


class RefundKind(StrEnum):
    REFUND = "refund"
    VOID = "void"
