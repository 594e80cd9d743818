"""A merchant's broken email override never undoes money that moved (an adversarial review's
repro, asserting what must happen): the receipt of a charge the gateway took, and the email of
a refund it made, ride in the same transaction as the payment or refund, so a template that
raises must cost the customer a nicer email at most, never the record of their money.
Real sandbox over HTTP, both databases."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from billing.sandbox import SandboxServer, cards
from billing.services import emails, refunds
from billing.services.collection import collect_due
from billing.services.ports import Deps
from billing.services.reconcile import reconcile, unresolved_attempts
from billing.store.engine import Store
from billing.store.models import Customer, Event, OutboxMessage, Refund
from billing.store.uow import UnitOfWork
from billing.templates import TemplateError
from tests.receiver.helpers import invoice_and_attempt, subscribe
from tests.receiver.test_receiver_paynow import charged


def broken(tmp_path: Path, template: str, part: str, content: bytes) -> Path:
    folder = tmp_path / "tpl" / "email" / "en"
    folder.mkdir(parents=True)
    (folder / f"{template}.{part}.j2").write_bytes(content)
    return tmp_path / "tpl"


def outbox(store: Store, template: str) -> list[OutboxMessage]:
    with UnitOfWork(store) as uow:
        return list(uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.template == template)))


@pytest.mark.parametrize("part,content", [
    ("subject", "Reçu {{ invoice_number }}".encode("latin-1")),  # saved in Latin-1
    ("html", b"{{ 1//0 }}"),
])
def test_a_broken_receipt_override_does_not_undo_a_charge_the_gateway_took(
    deps: Deps, store: Store, sandbox: SandboxServer, tmp_path: Path, part: str,
    content: bytes,
) -> None:
    folder = broken(tmp_path, "payment_succeeded", part, content)
    deps = replace(deps, config=replace(deps.config, templates_dir=folder))
    subscribe(deps, cards.APPROVE)
    assert collect_due(deps).outcomes == {"succeeded": 1}
    invoice, attempt = invoice_and_attempt(store)
    assert (invoice.status, invoice.amount_paid, attempt.state) == (
        "paid", invoice.total, "succeeded")
    assert charged(sandbox, store) == 1
    reconcile(deps)  # nothing left for reconciliation to trip over
    assert unresolved_attempts(deps) == 0
    [receipt] = outbox(store, "payment_succeeded")  # the shipped wording, still sent
    assert receipt.invoice_id == invoice.id
    assert receipt.subject == f"{deps.config.merchant_name}: receipt for invoice {invoice.number}"


def test_a_broken_refund_override_does_not_undo_a_refund_the_gateway_made(
    deps: Deps, store: Store, sandbox: SandboxServer, tmp_path: Path,
) -> None:
    subscribe(deps, cards.APPROVE)
    assert collect_due(deps).outcomes == {"succeeded": 1}
    invoice, attempt = invoice_and_attempt(store)
    folder = broken(tmp_path, "refund_issued", "txt", b"{{ amount + 1 }}")  # a TypeError
    deps = replace(deps, config=replace(deps.config, templates_dir=folder))
    assert refunds.refund_invoice(deps, invoice.number, amount=500).state == "succeeded"
    order = sandbox.ledger().order(attempt.mch_order_no)
    assert order is not None and order.refunded == 500
    with UnitOfWork(store) as uow:
        [refund] = uow.session.scalars(select(Refund))
        assert (refund.state, refund.amount) == ("succeeded", 500)
    [email] = outbox(store, "refund_issued")  # the shipped wording, still sent
    assert refund.credit_note_number is not None
    for shown in ("CA$5.00", invoice.number, refund.credit_note_number):
        assert shown in email.body_text


def test_an_email_that_cannot_be_rendered_at_all_is_skipped_with_an_alert_unless_strict(
    deps: Deps, store: Store,
) -> None:
    subscribe(deps, cards.APPROVE)
    assert collect_due(deps).outcomes == {"succeeded": 1}
    invoice, _ = invoice_and_attempt(store)
    with UnitOfWork(store) as uow:  # a shipped template's bug, as a missing key stands for
        customer = uow.session.get(Customer, invoice.customer_id)
        assert customer is not None
        queued = emails.queue(uow.session, deps.config, customer, "payment_succeeded",
                              at=deps.clock.now(), key="receipt:test", context={},
                              invoice_id=invoice.id)
        uow.commit()
    assert queued is False
    assert [m.dedupe_key for m in outbox(store, "payment_succeeded")] == [
        f"receipt:invoice:{invoice.id}"]  # the real receipt only
    with UnitOfWork(store) as uow:
        [event] = uow.session.scalars(select(Event).where(
            Event.type == "alert.email_render_failed"))
    assert event.invoice_id == invoice.id
    assert event.data["error"] == "TemplateError" and event.data["template"] == (
        "payment_succeeded")
    with UnitOfWork(store) as uow, pytest.raises(TemplateError):
        emails.queue(uow.session, deps.config, uow.session.get(Customer, invoice.customer_id),
                     "payment_succeeded", at=deps.clock.now(), key="receipt:strict",
                     context={}, strict=True)
