"""Request and response bodies of the JSON API.

Requests forbid unknown fields and bound every string and number (ids and amounts to 2**31-1),
so no input can reach a column it does not fit: the services check the rules, these check the
shapes. Money in responses is integer minor units with its currency (``{"amount": 1900,
"currency": "CAD"}``, or an ``int`` beside a ``currency`` field on documents).
"""

from billing.api.schemas.base import Amount, Request
from billing.api.schemas.documents import (
    CreditNoteOut,
    CreditNoteSummaryOut,
    EventOut,
    InvoiceOut,
    InvoiceSummaryOut,
    LineOut,
    PaymentOut,
    PayNowOut,
    PlanOut,
    RefundCreate,
    RefundOut,
    RefundRefOut,
    TaxOut,
)
from billing.api.schemas.parties import (
    CardDirectCreate,
    CardOut,
    CardSetupOut,
    ChangePreviewOut,
    CustomerCreate,
    CustomerOut,
    PlanChange,
    SubscriptionCancel,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionOut,
)

__all__ = [
    "Amount", "CardDirectCreate", "CardOut", "CardSetupOut", "ChangePreviewOut", "CreditNoteOut",
    "CreditNoteSummaryOut", "CustomerCreate", "CustomerOut", "EventOut", "InvoiceOut",
    "InvoiceSummaryOut", "LineOut", "PayNowOut", "PaymentOut", "PlanChange", "PlanOut",
    "RefundCreate", "RefundOut", "RefundRefOut", "Request", "SubscriptionCancel",
    "SubscriptionCreate", "SubscriptionCreated", "SubscriptionOut", "TaxOut",
]
