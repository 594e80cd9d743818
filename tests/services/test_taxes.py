"""Taxes on issued invoices: from the catalog's ``taxes:``, by the customer's province.

Ann (QC) subscribes to pro-monthly: 49.00 + 25.00 setup fee = 74.00, taxed GST 5 % (3.70) and
QST 9.975 % (7.38150 -> 7.38), so she is charged 85.08. Bob (no province) pays 74.00 as before.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest
from sqlalchemy import select

from billing.catalog.loader import load_catalog
from billing.clock import FixedClock
from billing.errors import InvalidInput
from billing.services.catalog import apply_catalog, diff_catalog
from billing.services.customers import add_customer
from billing.services.subscriptions import change_plan, create_subscription
from billing.store.engine import Store
from billing.store.models import Event, Invoice, TaxRateRow
from billing.store.uow import UnitOfWork

TAXES = """
taxes:
  - name: GST
    rate: "5"
    provinces: [AB, QC]
  - name: QST
    rate: "9.975"
    provinces: [QC]
  - name: HST
    rate: "13"
    provinces: ["ON"]
"""


@pytest.fixture
def taxed_plans(plans_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "plans"
    shutil.copytree(plans_dir, folder)
    (folder / "taxes.yaml").write_text(dedent(TAXES))
    return folder


@pytest.fixture
def taxed_shop(store: Store, clock: FixedClock, taxed_plans: Path) -> Store:
    with UnitOfWork(store) as uow:
        apply_catalog(uow, clock, load_catalog(taxed_plans))
    for ref, province in (("ann", "QC"), ("bob", None), ("cy", "ON")):
        with UnitOfWork(store) as uow:
            add_customer(uow, clock, external_id=ref, email=f"{ref}@example.com",
                         name=ref.title(), timezone="America/Toronto", province=province)
    return store


def _subscribe(store: Store, clock: FixedClock, customer: str, plan: str = "pro-monthly") -> int:
    with UnitOfWork(store) as uow:
        return int(create_subscription(uow, clock, customer=customer, plan=plan,
                                       trial_days=0)["id"])


def _invoices(store: Store, sub_id: int) -> list[Invoice]:
    with UnitOfWork(store) as uow:
        rows = list(uow.session.scalars(select(Invoice).where(Invoice.subscription_id == sub_id)
                                        .order_by(Invoice.id)))
        for row in rows:
            _ = row.lines, row.taxes
        return rows


def test_a_quebec_customer_is_charged_gst_and_qst_on_the_first_invoice(
        taxed_shop: Store, clock: FixedClock) -> None:
    [invoice] = _invoices(taxed_shop, _subscribe(taxed_shop, clock, "ann"))
    assert [(t.name, t.rate, t.province, t.taxable, t.amount) for t in invoice.taxes] == [
        ("GST", "5", "QC", 7400, 370), ("QST", "9.975", "QC", 7400, 738)]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (7400, 1108, 8508)
    assert invoice.template_version == "v1"
    with UnitOfWork(taxed_shop) as uow:
        issued = uow.session.scalar(select(Event).where(Event.type == "invoice.issued"))
        assert issued is not None and issued.data["tax"] == 1108


def test_a_customer_without_province_is_not_taxed(taxed_shop: Store, clock: FixedClock) -> None:
    [invoice] = _invoices(taxed_shop, _subscribe(taxed_shop, clock, "bob"))
    assert (invoice.taxes, invoice.tax, invoice.total) == ([], 0, 7400)


def test_an_ontario_customer_pays_hst_only(taxed_shop: Store, clock: FixedClock) -> None:
    [invoice] = _invoices(taxed_shop, _subscribe(taxed_shop, clock, "cy", "starter-monthly"))
    assert [(t.name, t.amount) for t in invoice.taxes] == [("HST", 247)]
    assert invoice.total == 1900 + 247


def test_an_upgrade_now_taxes_its_proration_invoice(taxed_shop: Store,
                                                    clock: FixedClock) -> None:
    sub = _subscribe(taxed_shop, clock, "ann", "starter-monthly")
    clock.set(datetime(2026, 1, 30, 5, tzinfo=UTC))
    with UnitOfWork(taxed_shop) as uow:
        view = asdict(change_plan(uow, clock, sub, plan="pro-monthly", when="now"))
    proration = _invoices(taxed_shop, sub)[-1]
    assert proration.kind == "proration" and view["invoice"] == proration.number
    net = proration.subtotal
    assert net == 1548 and [t.amount for t in proration.taxes] == [77, 154]
    assert proration.total == net + 77 + 154


def test_a_credit_on_an_open_invoice_takes_its_tax_off_too(taxed_shop: Store,
                                                           clock: FixedClock) -> None:
    """The downgrade credit (15.48, a price) comes off the taxable amount; each tax is computed
    again at the rate the invoice was issued with: 58.52 taxed 2.93 + 5.84."""
    sub = _subscribe(taxed_shop, clock, "ann")
    clock.set(datetime(2026, 1, 30, 5, tzinfo=UTC))
    with UnitOfWork(taxed_shop) as uow:
        done = asdict(change_plan(uow, clock, sub, plan="starter-monthly", when="now"))
    assert done["reduced"] == "INV-0000001 by 15.48 CAD"
    [invoice] = _invoices(taxed_shop, sub)
    assert invoice.subtotal == 7400 - 1548
    assert [(t.taxable, t.amount) for t in invoice.taxes] == [(5852, 293), (5852, 584)]
    assert invoice.total == 5852 + 293 + 584


def test_later_rate_changes_never_rewrite_an_issued_invoice(
        taxed_shop: Store, clock: FixedClock, taxed_plans: Path) -> None:
    [first] = _invoices(taxed_shop, _subscribe(taxed_shop, clock, "ann"))
    (taxed_plans / "taxes.yaml").write_text(dedent(TAXES).replace('"9.975"', '"10"'))
    catalog = load_catalog(taxed_plans)
    with UnitOfWork(taxed_shop) as uow:
        assert diff_catalog(uow, catalog).taxes == {
            "QC": "GST 5% + QST 10% (was GST 5% + QST 9.975%)"}
    with UnitOfWork(taxed_shop) as uow:
        apply_catalog(uow, clock, catalog)
    with UnitOfWork(taxed_shop) as uow:
        rates = {(r.province, r.name): r.rate for r in uow.session.scalars(select(TaxRateRow))}
        assert rates[("QC", "QST")] == "10"
        assert diff_catalog(uow, catalog).taxes == {}
    [again] = _invoices(taxed_shop, first.subscription_id or 0)
    assert [(t.rate, t.amount) for t in again.taxes] == [("5", 370), ("9.975", 738)]


def test_removing_the_taxes_section_stops_taxing_new_invoices(
        taxed_shop: Store, clock: FixedClock, plans_dir: Path) -> None:
    with UnitOfWork(taxed_shop) as uow:
        diff = apply_catalog(uow, clock, load_catalog(plans_dir))
    assert diff.taxes["QC"] == "none (was GST 5% + QST 9.975%)"
    [invoice] = _invoices(taxed_shop, _subscribe(taxed_shop, clock, "ann"))
    assert (invoice.tax, invoice.total) == (0, 7400)


def test_a_subscription_whose_taxed_total_cannot_be_charged_is_refused(
        taxed_shop: Store, clock: FixedClock) -> None:
    """1,000,000 x 19.00 = 19,000,000.00 fits one charge; with 14.975 % of tax it does not."""
    with UnitOfWork(taxed_shop) as uow:
        create_subscription(uow, clock, customer="bob", plan="starter-monthly",
                            quantity=1_000_000)
    with UnitOfWork(taxed_shop) as uow, pytest.raises(InvalidInput, match=r"QST 9\.975%"):
        create_subscription(uow, clock, customer="ann", plan="starter-monthly",
                            quantity=1_000_000)


@pytest.mark.parametrize("province,why", [("Quebec", "one of AB"), ("XX", "one of AB")])
def test_a_customer_province_is_a_known_code(store: Store, clock: FixedClock, province: str,
                                             why: str) -> None:
    with UnitOfWork(store) as uow, pytest.raises(InvalidInput, match=f"province: .*{why}"):
        add_customer(uow, clock, external_id="dee", email="d@example.com", name="Dee",
                     timezone="UTC", province=province)


def test_a_lowercase_province_is_stored_in_capitals(store: Store, clock: FixedClock) -> None:
    with UnitOfWork(store) as uow:
        view = add_customer(uow, clock, external_id="dee", email="d@example.com", name="Dee",
                            timezone="UTC", province="qc")
    assert view.province == "QC"
