"""Documents built by hand, to render without a database: every field a template may read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from billing.documents import Merchant
from billing.services.documents import (
    CreditNoteDocument,
    CustomerParty,
    InvoiceDocument,
    Line,
    Payment,
    RefundRef,
    Tax,
)

ISSUED = datetime(2026, 3, 1, 15, tzinfo=UTC)
PERIOD_START = datetime(2026, 3, 1, 5, tzinfo=UTC)
PERIOD_END = datetime(2026, 4, 1, 4, tzinfo=UTC)


def merchant(templates_dir: Path | None = None, logo: str | None = None) -> Merchant:
    return Merchant(name="Maple Cloud", legal_name="Maple Cloud Software Inc.",
                    address=("400 rue Saint-Paul Ouest", "Montréal QC  H2Y 2A6"),
                    email="billing@maplecloud.example", logo=logo,
                    gst_hst_number="123456789 RT0001", qst_number="1234567890 TQ0001",
                    templates_dir=templates_dir)


def customer(locale: str = "en", name: str = "Ann Lee") -> CustomerParty:
    return CustomerParty("cus_42", name, "ann@example.com", locale, "America/Toronto", "QC")


def invoice(locale: str = "en", *, version: str = "v1", name: str = "Ann Lee",
            refunded: int = 0) -> InvoiceDocument:
    """INV-0000007: 2 x 49.00 + 25.00 setup, 10.00 of credit, GST and QST on 113.00."""
    refunds = (RefundRef("refund", "CN-0000003", "KRWYB5-R3-ZMGSHM", "R26030100000003", refunded,
                         "succeeded", ISSUED, "goodwill"),) if refunded else ()
    return InvoiceDocument(
        number="INV-0000007", kind="renewal", status="paid", currency="CAD", issued_at=ISSUED,
        due_at=PERIOD_START, paid_at=ISSUED, period_start=PERIOD_START, period_end=PERIOD_END,
        customer=customer(locale, name), subscription=3,
        lines=(Line("subscription", "Pro 2026-03-01 to 2026-04-01", 2, 4900, 9800, PERIOD_START,
                    PERIOD_END),
               Line("setup_fee", "Pro setup fee", 1, 2500, 2500, None, None)),
        subtotal=12300, credit_applied=1000,
        taxes=(Tax("GST", "5", 11300, 565), Tax("QST", "9.975", 11300, 1127)),
        tax=1692, total=12992, amount_paid=12992, amount_refunded=refunded,
        payments=(Payment(1, "KRWYB5-7-01-4NSGW0", "P26030100000007", 12992, ISSUED,
                          "625094******0014"),),
        refunds=refunds, template_version=version)


def credit_note(locale: str = "en") -> CreditNoteDocument:
    inv = invoice(locale, refunded=5000)
    return CreditNoteDocument(
        number="CN-0000003", kind="refund", currency="CAD", amount=5000, issued_at=ISSUED,
        reason="goodwill", mch_refund_no="KRWYB5-R3-ZMGSHM", pay_order_id="R26030100000003",
        taxes=(Tax("GST", "5", 4349, 217), Tax("QST", "9.975", 4349, 434)),
        customer=inv.customer, invoice=inv, payment=inv.payments[0], template_version="v1")


def with_version(doc: InvoiceDocument, version: str) -> InvoiceDocument:
    return replace(doc, template_version=version)
