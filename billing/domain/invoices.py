"""The vocabulary of invoices and refunds: their statuses and kinds, typed once.

An invoice is ``open`` until exactly one payment attempt pays it (``paid``), or the engine stops
collecting it for good (``uncollectible``, ``void``). Refunds and voids are corrections of a paid
invoice and each becomes a credit note once it succeeds.
"""

from __future__ import annotations

from enum import StrEnum

DOCUMENT_VERSION = "v1"
"""The document templates (``billing/documents/templates/<version>/``) an invoice issued now is
rendered with, recorded on it (``invoices.template_version``). Change it when a template changes
what a document says or how it is laid out, and keep the old version's files: an invoice renders
with the version it was issued with, so a copy printed years later is the one the customer got.
"""


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
