"""Refunds against the sandbox: unknown outcomes resolved by reconciliation, concurrent refunds
bounded by what was paid, a reply racing its notify counted once, and notifies that disagree
with the refund recorded as discrepancies."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from billing.errors import InvalidInput
from billing.metrics import Metrics
from billing.receiver import ReceiverServer
from billing.sandbox import SandboxServer, cards
from billing.services import refunds
from billing.services.collection import collect_due
from billing.services.ports import Deps
from billing.services.reconcile import reconcile
from billing.store.engine import Store
from billing.store.models import Invoice, OutboxMessage, PaymentAttempt, Refund
from billing.store.uow import UnitOfWork
from tests.receiver.helpers import (
    NOTIFY,
    all_applied,
    invoice_and_attempt,
    notifications,
    notify_fields,
    signed,
    subscribe,
    wait_until,
)


def paid_invoice(deps: Deps, store: Store) -> tuple[Invoice, PaymentAttempt]:
    subscribe(deps, cards.APPROVE)
    assert collect_due(deps).outcomes == {"succeeded": 1}
    return invoice_and_attempt(store)


def refund_rows(store: Store) -> tuple[int, list[tuple[str, int]]]:
    with UnitOfWork(store) as uow:
        invoice = uow.session.scalars(select(Invoice)).one()
        rows = uow.session.scalars(select(Refund).order_by(Refund.id))
        return invoice.amount_refunded, [(r.state, r.amount) for r in rows]


def test_a_refund_whose_answer_is_lost_is_looked_up_not_sent_again(
    deps: Deps, sandbox: SandboxServer, store: Store
) -> None:
    invoice, attempt = paid_invoice(deps, store)
    sandbox.set_faults(drop_after_charge_rate=1.0, endpoints=("cc_refund",))
    assert refunds.refund_invoice(deps, invoice.number, amount=500).state == "unknown"
    sandbox.clear_faults()

    assert reconcile(deps).refunds == 0  # not due yet: the first check is a minute later
    deps.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
    assert reconcile(deps).refunds == 1
    assert refund_rows(store) == (500, [("succeeded", 500)])
    entry = sandbox.ledger().order(attempt.mch_order_no)
    assert entry is not None and entry.refunded == 500
    deps.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    assert reconcile(deps).refunds == 0  # settled: never looked up again


def test_a_refund_the_gateway_never_received_is_sent_again_under_its_number(
    deps: Deps, sandbox: SandboxServer, store: Store
) -> None:
    invoice, attempt = paid_invoice(deps, store)
    sandbox.set_faults(error_500_rate=1.0, endpoints=("cc_refund",))  # refused before processing
    assert refunds.refund_invoice(deps, invoice.number, amount=700).state == "unknown"
    sandbox.clear_faults()
    deps.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
    assert reconcile(deps).refunds == 1
    assert refund_rows(store) == (700, [("succeeded", 700)])
    entry = sandbox.ledger().order(attempt.mch_order_no)
    assert entry is not None and entry.refunded == 700


def test_a_refund_started_while_another_is_being_started_sees_it(
    deps: Deps, sandbox: SandboxServer, store: Store
) -> None:
    invoice, attempt = paid_invoice(deps, store)  # 18.50 paid
    outcome: list[object] = []

    def second_refund() -> None:
        try:
            outcome.append(refunds.refund_invoice(deps, invoice.number, amount=1000))
        except InvalidInput as exc:
            outcome.append(exc)

    with UnitOfWork(store) as uow:  # the first refund, between its invoice lock and its commit
        session = uow.session
        session.get(Invoice, invoice.id, with_for_update=True)
        session.add(Refund(invoice_id=invoice.id, payment_attempt_id=attempt.id, kind="refund",
                           mch_refund_no="TEST-R1", amount=1500, currency="CAD",
                           state="sending", created_at=deps.clock.now()))
        session.flush()
        racer = threading.Thread(target=second_refund)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive(), "the second refund must wait for the first one's invoice lock"
        uow.commit()
    racer.join(10)
    [result] = outcome
    assert isinstance(result, InvalidInput) and "3.50" in str(result)
    assert refund_rows(store) == (0, [("sending", 1500)])


def test_a_refund_answer_racing_its_notify_is_counted_once(
    receiver: ReceiverServer, deps: Deps, sandbox: SandboxServer, store: Store,
    metrics: Metrics, http: requests.Session,
) -> None:
    invoice, _ = paid_invoice(deps, store)
    refund_id, refund_no, pay_order_id, _ = refunds._start(deps, invoice.number, "refund", 300,
                                                           None)
    body = signed(notify_fields(
        payOrderId="R-RACE-1", mchOrderNo=refund_no, amount=300, payType="refund",
        originalOrderId=pay_order_id, refundable=1550, status=2))
    with UnitOfWork(store) as uow:  # the reply's record step, holding the refund row
        refund = uow.session.get(Refund, refund_id, with_for_update=True)
        assert refund is not None
        refunds._succeeded(uow.session, refund, deps.clock.now(), "R-RACE-1", deps.config)
        if store.engine.dialect.name == "postgresql":  # SQLite would block the notify's INSERT
            answer = http.post(f"{receiver.url}{NOTIFY}", data=body, timeout=10)
            assert answer.text == "SUCCESS"
            threading.Event().wait(0.3)  # the notify's apply now waits on our lock
        uow.commit()
    if store.engine.dialect.name != "postgresql":
        assert http.post(f"{receiver.url}{NOTIFY}", data=body, timeout=10).text == "SUCCESS"
    assert wait_until(lambda: all_applied(store, metrics))
    assert refund_rows(store) == (300, [("succeeded", 300)])
    assert [n.outcome for n in notifications(store) if n.mch_order_no == refund_no] == [
        "applied"]
    with UnitOfWork(store) as uow:  # counted once, and the customer is told once
        emails = uow.session.scalars(select(OutboxMessage.dedupe_key).where(
            OutboxMessage.template == "refund_issued")).all()
    assert emails == [f"refund_issued:refund:{refund_id}"]


@pytest.mark.parametrize("change", [{"currency": "USD"}, {"originalOrderId": "P-SOMEONE-ELSE"},
                                    {"amount": 301}])
def test_a_refund_notify_that_disagrees_with_the_refund_is_a_discrepancy(
    receiver: ReceiverServer, deps: Deps, sandbox: SandboxServer, store: Store,
    metrics: Metrics, http: requests.Session, change: dict[str, object],
) -> None:
    invoice, _ = paid_invoice(deps, store)
    _, refund_no, pay_order_id, _ = refunds._start(deps, invoice.number, "refund", 300, None)
    fields = notify_fields(payOrderId="R-ODD-1", mchOrderNo=refund_no, amount=300,
                           payType="refund", originalOrderId=pay_order_id, refundable=1550,
                           status=2)
    fields.update(change)
    answer = http.post(f"{receiver.url}{NOTIFY}", data=signed(fields), timeout=10)
    assert answer.text == "SUCCESS"  # stored, acknowledged, then not applied
    assert wait_until(lambda: all_applied(store, metrics))
    assert [n.outcome for n in notifications(store) if n.mch_order_no == refund_no] == [
        "discrepancy"]
    assert refund_rows(store) == (0, [("sending", 300)])
