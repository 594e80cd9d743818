"""What customers receive: the engine charges, declines and refunds against the sandbox, the
outbox sends through a real SMTP server (aiosmtpd), and the tests parse what arrived.

Bo (QC, French) takes pro-monthly on 2026-01-15: 85.08 with taxes; her card declines twice,
then approves. Ann (Ontario, English, no tax in this catalog) pays 74.00 at once.
"""

from __future__ import annotations

import io
import re
import shutil
from email.message import EmailMessage
from pathlib import Path

import pytest
from pydantic import SecretStr
from pypdf import PdfReader
from sqlalchemy import select, update

from billing.mail import SmtpTransport, message_id
from billing.sandbox import cards
from billing.services.cards import add_direct
from billing.services.customers import add_customer
from billing.services.links import invoice_of_pay_token
from billing.services.outbox import send_pending
from billing.services.refunds import refund_invoice
from billing.store.models import Customer, Invoice, OutboxMessage
from billing.store.uow import UnitOfWork
from tests.engine.conftest import world  # noqa: F401  (the engine's fixture, reused here)
from tests.engine.harness import PLANS, World, at

from .conftest import SmtpServer
from .test_templates import parse_html

NBSP = "\xa0"
TAXES = """
taxes:
  - {name: GST, rate: "5", provinces: [QC]}
  - {name: QST, rate: "9.975", provinces: [QC]}
"""


def _customer(w: World, ref: str, name: str, card: str, **fields: str) -> None:
    with UnitOfWork(w.deps.store) as uow:
        add_customer(uow, w.clock, external_id=ref, email=f"{ref}@example.com", name=name,
                     timezone="America/Toronto", **fields)
    add_direct(w.deps, ref, number=SecretStr(card), cvv=SecretStr("123"), expiry="1230",
               holder=name.upper())


@pytest.fixture
def paid(world: World, smtp_server: SmtpServer, tmp_path: Path) -> World:  # noqa: F811
    """Both customers charged, every email so far sent over SMTP."""
    folder = tmp_path / "plans"
    shutil.copytree(PLANS, folder)
    (folder / "taxes.yaml").write_text(TAXES)
    world.apply_plans(folder)
    _customer(world, "bo", "Bo Roy", cards.DECLINE_TWICE_THEN_APPROVE, province="QC",
              locale="fr")
    _customer(world, "ann", "Ann O'Neil", cards.APPROVE, province="ON", locale="en")
    world.subscribe("bo", "pro-monthly", trial_days=0)
    world.subscribe("ann", "pro-monthly", trial_days=0)
    world.mail = SmtpTransport(SecretStr(smtp_server.url()))  # type: ignore[assignment]
    world.run_until(at("2026-01-20"))
    assert {i.status for i in world.invoices()} == {"paid"}
    return world


def _arrived(smtp: SmtpServer, to: str, template: str) -> list[EmailMessage]:
    return [m for m in smtp.inbox.messages
            if m["To"] == to and m["X-Billing-Template"] == template]


def _invoice(w: World, customer: str) -> Invoice:
    """The one invoice of ``customer`` (by the merchant's customer id)."""
    with UnitOfWork(w.deps.store) as uow:
        [invoice] = uow.session.scalars(select(Invoice).join(
            Customer, Customer.id == Invoice.customer_id).where(Customer.external_id == customer))
        return invoice


def _parts(msg: EmailMessage) -> tuple[str, str, list[EmailMessage]]:
    assert msg.get_content_type() == "multipart/mixed" or msg.is_multipart()
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    files = [p for p in msg.iter_attachments() if isinstance(p, EmailMessage)]
    return str(text.get_content()), str(html.get_content()), files


def _pdf_text(part: EmailMessage) -> str:
    assert part.get_content_type() == "application/pdf"
    data = part.get_content()
    assert isinstance(data, bytes) and data.startswith(b"%PDF")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_receipts_arrive_in_each_customers_language_with_the_invoice_pdf(
        paid: World, smtp_server: SmtpServer) -> None:
    sender = paid.deps.config.merchant_email
    for ref, name, locale in (("bo", "Bo Roy", "fr"), ("ann", "Ann O'Neil", "en")):
        invoice = _invoice(paid, ref)
        [msg] = _arrived(smtp_server, f"{ref}@example.com", "payment_succeeded")
        assert msg["From"] == sender
        assert msg["Message-ID"] == message_id(f"receipt:invoice:{invoice.id}", sender)
        expected_subject = {"fr": f"{paid.deps.config.merchant_name} : reçu pour la facture "
                                  f"{invoice.number}",
                            "en": f"{paid.deps.config.merchant_name}: receipt for invoice "
                                  f"{invoice.number}"}[locale]
        assert msg["Subject"] == expected_subject
        text, html, files = _parts(msg)
        total = {"fr": f"85,08{NBSP}$CA", "en": "CA$74.00"}[locale]  # ON: 49 + 25 setup, no tax
        greeting = {"fr": f"Bonjour {name},", "en": f"Hello {name},"}[locale]
        assert text.startswith(greeting) and total in text and invoice.number in text
        assert f'<html lang="{locale}">' in html
        shown = re.sub(r"[ \t\r\n]+", " ", " ".join(parse_html(html).text))
        assert greeting in shown and total in shown
        [pdf] = files
        assert pdf.get_filename() == f"{invoice.number}.pdf"
        document = _pdf_text(pdf)
        assert invoice.number in document and name in document
        assert total.replace(NBSP, " ") in document.replace(NBSP, " ")


def test_a_resent_receipt_keeps_its_message_id_and_attaches_the_same_invoice(
        paid: World, smtp_server: SmtpServer) -> None:
    invoice = _invoice(paid, "bo")
    [first] = _arrived(smtp_server, "bo@example.com", "payment_succeeded")
    with UnitOfWork(paid.deps.store) as uow:  # as if the worker crashed before marking it sent
        uow.session.execute(update(OutboxMessage).where(
            OutboxMessage.dedupe_key == f"receipt:invoice:{invoice.id}").values(sent_at=None))
        uow.commit()
    summary = send_pending(paid.deps.store, paid.mail, paid.clock, worker="w2",
                           sender=paid.deps.config.merchant_email)
    assert summary.sent == 1
    first_copy, again = _arrived(smtp_server, "bo@example.com", "payment_succeeded")
    assert first_copy is first and again["Message-ID"] == first["Message-ID"]
    assert _parts(again)[:2] == _parts(first)[:2]
    assert _pdf_text(_parts(again)[2][0]) == _pdf_text(_parts(first)[2][0])


def test_payment_failed_emails_carry_a_working_pay_now_link(
        paid: World, smtp_server: SmtpServer) -> None:
    invoice = _invoice(paid, "bo")
    failed = _arrived(smtp_server, "bo@example.com", "payment_failed")
    assert failed, "Bo's two declines were not emailed"
    text, html, files = _parts(failed[0])
    assert files == []
    assert text.startswith("Bonjour Bo Roy,") and f"85,08{NBSP}$CA" in text
    prefix = f"{paid.deps.config.public_url.rstrip('/')}/billing/pay/"
    [pay_url] = [line for line in text.splitlines() if line.startswith(prefix)]
    assert pay_url in parse_html(html).links
    token = pay_url.removeprefix(prefix)
    assert invoice_of_pay_token(paid.deps.config, token, paid.clock.now()) == invoice.id
    assert not _arrived(smtp_server, "ann@example.com", "payment_failed")


def test_a_refund_sends_the_credit_note(paid: World, smtp_server: SmtpServer) -> None:
    invoice = _invoice(paid, "bo")
    view = refund_invoice(paid.deps, invoice.number, amount=2000, reason="goodwill")
    assert view.state == "succeeded" and view.credit_note is not None
    paid.tick()
    [msg] = _arrived(smtp_server, "bo@example.com", "refund_issued")
    assert msg["Subject"] == (f"{paid.deps.config.merchant_name} : remboursement de "
                              f"20,00{NBSP}$CA pour la facture {invoice.number}")
    text, html, files = _parts(msg)
    assert view.credit_note in text and view.credit_note in html
    [pdf] = files
    assert pdf.get_filename() == f"{view.credit_note}.pdf"
    document = _pdf_text(pdf)
    assert view.credit_note in document and invoice.number in document
    assert "Bo Roy" in document and "20,00" in document
    with UnitOfWork(paid.deps.store) as uow:
        rows = list(uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.template == "refund_issued")))
    assert [r.attachments for r in rows] == [[{"kind": "credit_note",
                                               "number": view.credit_note}]]
