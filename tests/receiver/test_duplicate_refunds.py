"""The automatic refund of a duplicate charge, end to end (review findings 3, 4 and 5d).

A duplicate's refund gives back a charge the invoice never counted: its credit note carries no
tax share and names the duplicated order (the invoice may have been credited below the
duplicate's amount, which once made the share impossible to compute and the credit note fail),
its webhook facts say ``duplicate``, and a refund the gateway fails raises an alert, since
``alert.double_charge`` told the operator it needed nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import requests
from pydantic import SecretStr
from sqlalchemy import select

from billing.clock import FixedClock
from billing.documents import render_credit_note
from billing.gateway.replies import GatewayReply, OrderInfo
from billing.metrics import Metrics
from billing.receiver import ReceiverServer
from billing.sandbox import DEFAULT_MERCHANT, SandboxServer, cards
from billing.services.cards import add_direct
from billing.services.collection import collect_due
from billing.services.customers import add_customer
from billing.services.documents import credit_note_document
from billing.services.outbox import document_attacher
from billing.services.ports import Deps
from billing.services.reconcile import reconcile
from billing.services.refunds import duplicate_refund_number
from billing.services.subscriptions import create_subscription
from billing.store.engine import Store
from billing.store.models import Event, Invoice, OutboxMessage, TaxRateRow
from billing.store.uow import UnitOfWork
from billing.webhooks.payloads import Subject, build_object
from tests.documents import samples
from tests.receiver.helpers import all_applied, customer_with_card, wait_until
from tests.receiver.test_receiver_paynow import attempts, hosted_page, the_invoice
from tests.receiver.test_receiver_paynow_money import (
    abandon,
    alert_keys,
    credit,
    refunded,
    refunds,
    submit_only,
)


def test_a_duplicate_refund_number_keeps_the_d_for_the_longest_order_number() -> None:
    longest = "ABCDEFGHI-1234567890123-7M2Q9X"
    assert len(longest) == 30
    number = duplicate_refund_number(longest)
    assert number != longest and len(number) == 30
    assert number == "DBCDEFGHI-1234567890123-7M2Q9X"
    assert duplicate_refund_number("K3F9QZ-123-01-7M2Q9X") == "DK3F9QZ-123-01-7M2Q9X"


def _taxed_customer_in_dunning(deps: Deps) -> Invoice:
    """An Ontario customer (HST 13 %) whose weekly invoice was declined once."""
    customer_with_card(deps)
    at = deps.clock.now()
    with UnitOfWork(deps.store) as uow:
        uow.session.add(TaxRateRow(province="ON", name="HST", rate="13", position=0,
                                   updated_at=at))
        uow.commit()
    with UnitOfWork(deps.store) as uow:
        add_customer(uow, deps.clock, external_id="cus_2", email="bo@example.com", name="Bo",
                     timezone="America/Toronto", province="ON", locale="fr")
    add_direct(deps, "cus_2", number=SecretStr(cards.DECLINE_INSUFFICIENT_FUNDS),
               cvv=SecretStr("123"), expiry="1230", holder="Bo Example")
    with UnitOfWork(deps.store) as uow:
        create_subscription(uow, deps.clock, customer="cus_2", plan="coffee-weekly")
    assert collect_due(deps).outcomes == {"failed": 1}
    invoice = the_invoice(deps.store)
    assert invoice.status == "open" and invoice.tax > 0
    return invoice


def test_a_duplicate_above_the_credited_total_gets_a_tax_free_credit_note_naming_it(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = _taxed_customer_in_dunning(deps)
    old_tab = hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    credit(store, clock, lambda inv: 500)  # a downgrade: the old page asks too much now
    new_tab = hosted_page(http, receiver, deps, sandbox, invoice.id)
    submit_only(http, new_tab, cards.APPROVE)
    assert wait_until(lambda: all_applied(store, metrics))
    paid = the_invoice(store)
    assert paid.status == "paid" and paid.amount_paid == paid.total < invoice.total
    submit_only(http, old_tab, cards.APPROVE)  # the old page, paid late: a duplicate
    assert wait_until(lambda: all_applied(store, metrics)
                      and any(a.state == "duplicate" for a in attempts(store)))
    late = next(a for a in attempts(store) if a.state == "duplicate")
    assert late.amount == invoice.total > paid.amount_paid
    reconcile(deps)
    (refund,) = refunds(store)
    assert refund.state == "succeeded" and refund.credit_note_number is not None
    assert refunded(sandbox, late.mch_order_no) == late.amount
    after = the_invoice(store)
    assert (after.status, after.amount_paid, after.amount_refunded) == (
        "paid", paid.amount_paid, 0)

    with UnitOfWork(store) as uow:
        note = credit_note_document(uow, refund.credit_note_number)
    assert (note.amount, note.taxes, note.duplicate) == (late.amount, (), late.mch_order_no)
    assert note.payment is not None and note.payment.mch_order_no == late.mch_order_no
    for locale, words in (("en", "duplicate charge"), ("fr", "débit en double")):
        text = render_credit_note(note, samples.merchant(), "txt", locale).decode()
        reason = next(line for line in text.splitlines() if line.startswith(
            ("Reason:", "Motif")))
        assert words in reason and late.mch_order_no in reason
        html = render_credit_note(note, samples.merchant(), "html", locale).decode()
        assert words in html and late.mch_order_no in html
    # The refund-issued email's attachment is that credit note (it used to fail every pass).
    with UnitOfWork(store) as uow:
        email = uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.template == "refund_issued")).one()
    files = document_attacher(store, samples.merchant())(email)
    assert [f.filename for f in files] == [f"{refund.credit_note_number}.pdf"]

    with UnitOfWork(store) as uow:
        event = uow.session.scalars(select(Event).where(
            Event.type == "refund.succeeded")).one()
        data = dict(event.data)
    obj = build_object("refund.succeeded", "refund.succeeded", Subject(currency="CAD"), data)
    assert obj["duplicate"] == late.mch_order_no and obj["amount"] == late.amount


class FailingRefunds:
    """The sandbox, except that the gateway answers every refund with status 9 (failed)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def cc_refund(self, *, mch_refund_no: str, refund_amount: int, **kw: Any) -> Any:
        data = OrderInfo.model_validate({
            "mchOrderNo": mch_refund_no, "amount": refund_amount, "currency": "CAD",
            "mchId": DEFAULT_MERCHANT.mch_id, "payOrderId": "R-FAILED-1", "status": 9})
        return GatewayReply("cc_refund", "SUCCESS", "refund declined", data)


def test_a_duplicates_refund_the_gateway_fails_raises_an_alert(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    customer_with_card(deps, cards.DECLINE_INSUFFICIENT_FUNDS)
    with UnitOfWork(deps.store) as uow:
        create_subscription(uow, deps.clock, customer="cus_1", plan="coffee-weekly")
    assert collect_due(deps).outcomes == {"failed": 1}
    invoice = the_invoice(store)
    tab = hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    credit(store, clock, lambda inv: inv.total - inv.tax)  # credited to zero: paid
    submit_only(http, tab, cards.APPROVE)
    assert wait_until(lambda: all_applied(store, metrics)
                      and any(a.state == "duplicate" for a in attempts(store)))
    late = attempts(store)[-1]
    assert alert_keys(store) == [f"double_charge:{late.mch_order_no}"]
    reconcile(replace(deps, gateway=FailingRefunds(deps.gateway)))
    (refund,) = refunds(store)
    assert refund.state == "failed" and refunded(sandbox, late.mch_order_no) == 0
    assert alert_keys(store) == sorted([f"double_charge:{late.mch_order_no}",
                                        f"refund_failed:{refund.mch_refund_no}"])
    with UnitOfWork(store) as uow:
        alert = uow.session.scalars(select(Event).where(
            Event.type == "alert.refund_failed")).one()
        assert alert.data["duplicate"] == late.mch_order_no
        assert alert.data["amount"] == late.amount


class RefusedRefunds(FailingRefunds):
    """The sandbox, except that the gateway refuses every refund request (``retCode=FAIL``)."""

    def cc_refund(self, *, mch_refund_no: str, refund_amount: int, **kw: Any) -> Any:
        return GatewayReply("cc_refund", "FAIL", "refund not allowed", None)


def test_a_duplicates_refund_the_gateway_refuses_stays_unknown_and_alerts_once(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    customer_with_card(deps, cards.DECLINE_INSUFFICIENT_FUNDS)
    with UnitOfWork(deps.store) as uow:
        create_subscription(uow, deps.clock, customer="cus_1", plan="coffee-weekly")
    assert collect_due(deps).outcomes == {"failed": 1}
    tab = hosted_page(http, receiver, deps, sandbox, the_invoice(store).id)
    abandon(deps, clock)
    credit(store, clock, lambda inv: inv.total - inv.tax)
    submit_only(http, tab, cards.APPROVE)
    assert wait_until(lambda: all_applied(store, metrics)
                      and any(a.state == "duplicate" for a in attempts(store)))
    late = attempts(store)[-1]
    refusing = replace(deps, gateway=RefusedRefunds(deps.gateway))
    reconcile(refusing)
    (refund,) = refunds(store)
    assert refund.state == "unknown" and refund.next_check_at is not None
    assert f"refund_failed:{refund.mch_refund_no}" in alert_keys(store)
    clock.set(refund.next_check_at + timedelta(seconds=1))
    reconcile(refusing)  # refused again: the same cause, not a second alert event
    with UnitOfWork(store) as uow:
        events = list(uow.session.scalars(select(Event).where(
            Event.type == "alert.refund_failed")))
    assert [e.data["refused"] for e in events] == ["refund not allowed"]
    assert events[0].data["duplicate"] == late.mch_order_no
    later = refunds(store)[0].next_check_at
    assert later is not None
    clock.set(later + timedelta(seconds=1))
    reconcile(deps)  # the gateway takes it at last: the money goes back once
    assert refunds(store)[0].state == "succeeded"
    assert refunded(sandbox, late.mch_order_no) == late.amount
