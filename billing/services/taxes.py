"""The catalog's tax rates as invoices read them: by the customer's province, cached per session.

Renewal drafts invoices by the thousand in one transaction, so the rates of a province are read
once per session (``session.info``), and a customer without a province costs no query at all.
``apply_catalog`` forgets the cache of the session that rewrites the rates.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.domain.taxes import TaxRate
from billing.store.models import InvoiceTax, TaxRateRow

CACHE = "tax_rates"


def rates_for(session: Session, province: str | None) -> tuple[TaxRate, ...]:
    """The taxes a customer of ``province`` pays, in invoice order; none without a province."""
    if province is None:
        return ()
    cache: dict[str, tuple[TaxRate, ...]] = session.info.setdefault(CACHE, {})
    if province not in cache:
        rows = session.scalars(select(TaxRateRow).where(TaxRateRow.province == province)
                               .order_by(TaxRateRow.position))
        cache[province] = tuple(TaxRate(row.name, Decimal(row.rate)) for row in rows)
    return cache[province]


def forget_rates(session: Session) -> None:
    session.info.pop(CACHE, None)


def recorded_rates(taxes: list[InvoiceTax]) -> tuple[TaxRate, ...]:
    """The rates an invoice was taxed at when issued: a correction of it uses these, never the
    catalog's current ones, since it corrects the same sale."""
    return tuple(TaxRate(row.name, Decimal(row.rate)) for row in taxes)
