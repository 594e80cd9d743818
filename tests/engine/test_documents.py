"""Documents and ``explain`` of invoices the engine really charged, dunned and refunded.

Bo (QC) takes pro-monthly on 2026-01-15: 49.00 + 25.00 setup, GST 3.70 and QST 7.38, so 85.08.
Her card declines twice, then approves on the second retry; a 20.00 refund follows.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import update

from billing.documents import render_credit_note, render_invoice
from billing.sandbox import cards
from billing.services.cards import add_direct
from billing.services.customers import add_customer
from billing.services.documents import (
    credit_note_document,
    invoice_document,
    list_credit_notes,
    list_invoices,
)
from billing.services.explain import explain_invoice
from billing.services.refunds import refund_invoice
from billing.store.models import Invoice
from billing.store.uow import UnitOfWork
from tests.documents import samples
from tests.engine.harness import PLANS, World, at

TAXES = """
taxes:
  - {name: GST, rate: "5", provinces: [QC]}
  - {name: QST, rate: "9.975", provinces: [QC]}
"""


@pytest.fixture
def bo_paid(world: World, tmp_path: Path) -> tuple[World, str]:
    folder = tmp_path / "plans"
    shutil.copytree(PLANS, folder)
    (folder / "taxes.yaml").write_text(TAXES)
    world.apply_plans(folder)
    with UnitOfWork(world.deps.store) as uow:
        add_customer(uow, world.clock, external_id="bo", email="bo@example.com", name="Bo Roy",
                     timezone="America/Toronto", province="QC", locale="fr")
    add_direct(world.deps, "bo", number=SecretStr(cards.DECLINE_TWICE_THEN_APPROVE),
               cvv=SecretStr("123"), expiry="1230", holder="BO ROY")
    world.subscribe("bo", "pro-monthly", trial_days=0)
    world.run_until(at("2026-01-20"))
    [invoice] = world.invoices()
    assert invoice.status == "paid" and invoice.total == 8508
    return world, invoice.number


def test_the_invoice_document_shows_taxes_and_the_payment_references(
        bo_paid: tuple[World, str]) -> None:
    world, number = bo_paid
    succeeded = [a for a in world.attempts() if a.state == "succeeded"]
    with UnitOfWork(world.deps.store) as uow:
        doc = invoice_document(uow, number.lower())  # typed in lower case: still found
    assert [(t.name, t.rate, t.amount) for t in doc.taxes] == [("GST", "5", 370),
                                                              ("QST", "9.975", 738)]
    assert (doc.subtotal, doc.tax, doc.total, doc.amount_paid, doc.amount_due) == (
        7400, 1108, 8508, 8508, 0)
    [payment] = doc.payments  # the two declines are not payments
    assert payment.mch_order_no == succeeded[0].mch_order_no and payment.attempt == 3
    assert payment.pay_order_id == succeeded[0].pay_order_id is not None
    assert payment.card is not None and payment.card.endswith(cards.DECLINE_TWICE_THEN_APPROVE[-4:])
    assert doc.template_version == "v1" and doc.customer.locale == "fr"


def test_a_refund_becomes_a_credit_note_with_its_share_of_the_taxes(
        bo_paid: tuple[World, str]) -> None:
    world, number = bo_paid
    view = refund_invoice(world.deps, number, amount=2000, reason="goodwill")
    assert view.state == "succeeded" and view.credit_note is not None
    with UnitOfWork(world.deps.store) as uow:
        note = credit_note_document(uow, view.credit_note)
        [listed] = list_credit_notes(uow, customer="bo")
        doc = invoice_document(uow, number)
    assert listed.number == note.number == view.credit_note and listed.invoice == number
    # 20.00 of 85.08 gives back 3.70 x 2000/8508 = 0.87 of GST and 7.38 x 2000/8508 = 1.73 of QST
    assert [(t.name, t.amount) for t in note.taxes] == [("GST", 87), ("QST", 173)]
    assert note.payment is not None and note.payment.mch_order_no == doc.payments[0].mch_order_no
    assert [(r.credit_note, r.amount, r.state) for r in doc.refunds] == [
        (view.credit_note, 2000, "succeeded")]
    text = render_credit_note(note, samples.merchant(), "txt").decode()
    assert view.credit_note in text and "20,00" in text and note.mch_refund_no in text
    html = render_invoice(doc, samples.merchant(), "html").decode()
    assert "Remboursements et notes de crédit" in html and view.credit_note in html


def test_explain_tells_the_rule_chain_and_every_attempt_with_its_source(
        bo_paid: tuple[World, str]) -> None:
    world, number = bo_paid
    refund_invoice(world.deps, number, amount=2000)
    world.sandbox.wait_for_notifies(5.0)
    assert world.settle(world.notifies_applied)
    with UnitOfWork(world.deps.store) as uow:
        e = explain_invoice(uow, number)
    topics = [s.topic for s in e.amount]
    assert topics == ["plan", "period", "line", "line", "line", "tax", "tax", "total"]
    assert e.amount[0].data == {"subscription": 1, "plan": "pro-monthly", "version": 1,
                                "price": 4900, "interval": [1, "month"]}
    assert "QST 9.975% (QC) on 74.00 CAD = 7.38 CAD" in e.amount[6].text
    assert e.amount[-1].data["total"] == 8508
    attempts = [s.data for s in e.history if s.topic == "attempt"]
    assert [(a["attempt"], a["state"], a["source"]) for a in attempts] == [
        (1, "failed", "purchase"), (2, "failed", "purchase"), (3, "succeeded", "purchase")]
    sources = {(s.data["type"], s.data.get("source")) for s in e.history if s.topic == "event"}
    assert ("payment.declined", "purchase") in sources
    assert ("payment.succeeded", "purchase") in sources
    notifies = [s.data for s in e.history if s.topic == "notify"]
    assert len(notifies) == 2 and {n["outcome"] for n in notifies} == {"applied"}
    assert any(s.topic == "email" and "payment_failed" in s.text for s in e.history)
    assert any(s.topic == "refund" and "credit note CN-" in s.text for s in e.history)
    times = [s.at for s in e.history if s.at is not None]
    assert times == sorted(times)
    assert e.verdict.startswith(f"paid by {attempts[-1]['mch_order_no']}")
    assert "20.00 CAD refunded" in e.verdict


def test_invoices_are_listed_by_customer_status_and_local_issue_date(
        bo_paid: tuple[World, str]) -> None:
    world, number = bo_paid
    with UnitOfWork(world.deps.store) as uow:
        assert [i.number for i in list_invoices(uow, customer="bo")] == [number]
        assert list_invoices(uow, status="open") == []
        day = date(2026, 1, 15)
        assert [i.number for i in list_invoices(uow, issued_from=day, issued_to=day,
                                                timezone="America/Toronto")] == [number]
        assert list_invoices(uow, issued_from=date(2026, 1, 16),
                             timezone="America/Toronto") == []


def test_an_invoice_issued_before_versions_were_recorded_renders_with_v1(
        bo_paid: tuple[World, str]) -> None:
    world, number = bo_paid
    with UnitOfWork(world.deps.store) as uow:
        uow.session.execute(update(Invoice).values(template_version=None))
        uow.commit()
    with UnitOfWork(world.deps.store) as uow:
        doc = invoice_document(uow, number)
    assert doc.template_version == "v1"
    assert "Gabarit v1" in render_invoice(doc, samples.merchant(), "txt").decode()
