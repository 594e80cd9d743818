"""The schema refuses an invoice whose total does not add up, and taxes that make no sense.

Built by migration 0004 on both backends (``test_migrations`` compares columns, not CHECKs, so
these prove the checks exist where the data lives).
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from billing.store.engine import Store
from billing.store.models import Customer, InvoiceTax, TaxRateRow
from billing.store.uow import UnitOfWork
from tests.store.test_constraints import AT, _fails, _invoice, _seed


@pytest.mark.parametrize("fields", [
    {"subtotal": 1000, "tax": 150, "total": 1000},
    {"subtotal": 1000, "credit_applied": 100, "tax": 0, "total": 1000},
    {"subtotal": 1000, "tax": -10, "total": 990},
])
def test_an_invoice_total_must_be_subtotal_less_credit_plus_tax(store: Store,
                                                                fields: dict[str, int]) -> None:
    ids = _seed(store)
    later = AT + timedelta(days=40)
    _fails(store, _invoice(ids["customer"], ids["subscription"], "INV-9", later, **fields))


def test_a_taxed_invoice_that_adds_up_is_stored(store: Store) -> None:
    ids = _seed(store)
    invoice = _invoice(ids["customer"], ids["subscription"], "INV-9", AT + timedelta(days=40),
                       subtotal=1000, credit_applied=100, tax=135, total=1035)
    invoice.taxes = [InvoiceTax(position=0, name="HST", province="ON", rate="15",
                                taxable=900, amount=135)]
    with UnitOfWork(store) as uow:
        uow.session.add(invoice)
        uow.commit()


def test_a_negative_tax_line_is_refused(store: Store) -> None:
    ids = _seed(store)
    invoice = _invoice(ids["customer"], ids["subscription"], "INV-9", AT + timedelta(days=40))
    invoice.taxes = [InvoiceTax(position=0, name="GST", province="QC", rate="5", taxable=1000,
                                amount=-50)]
    _fails(store, invoice)


def test_provinces_are_known_codes(store: Store) -> None:
    _fails(store, Customer(external_id="x", email="x@x.io", name="X", locale="en",
                           timezone="UTC", province="ZZ", credit_balance=0, created_at=AT))
    _fails(store, TaxRateRow(province="Qc", name="GST", rate="5", position=0,
                             updated_at=AT.astimezone(UTC)))
    with UnitOfWork(store) as uow, pytest.raises(IntegrityError):
        uow.session.add_all([TaxRateRow(province="QC", name="GST", rate="5", position=0,
                                        updated_at=AT),
                             TaxRateRow(province="QC", name="GST", rate="6", position=1,
                                        updated_at=AT)])
        uow.session.flush()
