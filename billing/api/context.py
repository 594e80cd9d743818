"""What every router of the API needs: the engine's dependencies and a few settings."""

from __future__ import annotations

from dataclasses import dataclass

from billing.documents.merchant import Merchant
from billing.services.ports import Deps


@dataclass(frozen=True)
class ApiContext:
    deps: Deps
    merchant: Merchant
    """Printed on rendered invoices and credit notes."""
    timezone: str = "UTC"
    """The merchant's zone: invoice date filters are local days in it (``BILLING_TIMEZONE``)."""
