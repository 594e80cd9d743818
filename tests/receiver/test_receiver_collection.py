"""Notifies the sandbox really sends, after the engine really charged: they pay invoices."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from billing.metrics import Metrics
from billing.receiver import ReceiverServer
from billing.sandbox import SandboxServer, cards
from billing.services.collection import collect_due
from billing.services.ports import Deps
from billing.store.engine import Store
from billing.store.models import Event, PaymentAttempt
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


def test_a_pending_charge_is_paid_by_the_notify_the_sandbox_sends_when_it_settles(
    receiver: ReceiverServer, deps: Deps, sandbox: SandboxServer, store: Store, metrics: Metrics
) -> None:
    subscribe(deps, cards.PENDING_THEN_APPROVE)
    assert collect_due(deps).outcomes == {"pending": 1}
    invoice, attempt = invoice_and_attempt(store)
    assert (invoice.status, attempt.state) == ("open", "pending")

    sandbox.advance_clock(timedelta(minutes=3))  # the order settles and notifies the receiver
    assert sandbox.wait_for_notifies(5)
    assert [(a.http_status, a.answer) for a in sandbox.notify_log()] == [(200, "SUCCESS")]
    assert wait_until(lambda: all_applied(store, metrics))

    invoice, attempt = invoice_and_attempt(store)
    assert (invoice.status, invoice.amount_paid, attempt.state) == ("paid", 1850, "succeeded")
    assert [n.outcome for n in notifications(store)] == ["applied"]
    assert sandbox.ledger().charges(attempt.mch_order_no) == 1
    sample = metrics.registry.get_sample_value
    assert sample("billing_notifies_total", {"result": "applied"}) == 1
    assert sample("billing_notify_lag_seconds_count") == 1
    assert sample("billing_notify_lag_seconds_sum") == 180  # the clock moved 3 minutes


def test_duplicated_and_forged_deliveries_of_a_real_charge_are_harmless(
    receiver: ReceiverServer, deps: Deps, sandbox: SandboxServer, store: Store, metrics: Metrics
) -> None:
    subscribe(deps, cards.PENDING_THEN_APPROVE)
    assert collect_due(deps).outcomes == {"pending": 1}
    sandbox.set_faults(duplicate_notify_rate=1.0, forged_notify_rate=1.0)
    sandbox.advance_clock(timedelta(minutes=3))
    assert sandbox.wait_for_notifies(5)
    answers = sorted((a.kind, a.http_status, a.answer) for a in sandbox.notify_log())
    assert answers == [("duplicate", 200, "SUCCESS"), ("forged", 400, "FAIL"),
                       ("real", 200, "SUCCESS")]
    assert wait_until(lambda: all_applied(store, metrics))
    assert [n.outcome for n in notifications(store)] == ["applied"]
    invoice, attempt = invoice_and_attempt(store)
    assert (invoice.status, invoice.amount_paid, attempt.state) == ("paid", 1850, "succeeded")
    assert sandbox.ledger().charges(attempt.mch_order_no) == 1
    sample = metrics.registry.get_sample_value
    assert [sample("billing_notifies_total", {"result": r})
            for r in ("applied", "duplicate", "rejected")] == [1, 1, 1]


def test_a_signed_notify_with_the_wrong_amount_is_a_discrepancy_and_pays_nothing(
    receiver: ReceiverServer, deps: Deps, store: Store, http: requests.Session,
    metrics: Metrics,
) -> None:
    subscribe(deps, cards.PENDING_THEN_APPROVE)
    collect_due(deps)
    _, attempt = invoice_and_attempt(store)
    body = signed(notify_fields(mchOrderNo=attempt.mch_order_no, amount=1, refundable=1))
    answer = http.post(receiver.url + NOTIFY, data=body, timeout=10)
    assert (answer.status_code, answer.text) == (200, "SUCCESS")  # stored, so acknowledged
    assert wait_until(lambda: all_applied(store, metrics))

    assert [n.outcome for n in notifications(store)] == ["discrepancy"]
    invoice, attempt = invoice_and_attempt(store)
    assert (invoice.status, invoice.amount_paid, attempt.state) == ("open", 0, "pending")
    with UnitOfWork(store) as uow:
        alerts = list(uow.session.scalars(
            select(Event).where(Event.type == "alert.notify_discrepancy")))
    assert len(alerts) == 1 and alerts[0].data["mch_order_no"] == attempt.mch_order_no
    assert metrics.registry.get_sample_value(
        "billing_notifies_total", {"result": "discrepancy"}) == 1


def test_a_signed_notify_with_another_amount_never_shadows_the_genuine_one(
    receiver: ReceiverServer, deps: Deps, store: Store, http: requests.Session,
    metrics: Metrics,
) -> None:
    """Deduplicated on everything it asserts: the genuine notify that follows a validly signed
    one with another amount (same payOrderId, payType and status) is a new fact, applied."""
    subscribe(deps, cards.PENDING_THEN_APPROVE)
    collect_due(deps)
    _, attempt = invoice_and_attempt(store)
    same = dict(mchOrderNo=attempt.mch_order_no, payOrderId=attempt.pay_order_id, status=2)
    wrong = signed(notify_fields(**same, amount=1, refundable=1))
    genuine = signed(notify_fields(**same, amount=attempt.amount, refundable=attempt.amount))
    for body in (wrong, genuine):
        answer = http.post(receiver.url + NOTIFY, data=body, timeout=10)
        assert (answer.status_code, answer.text) == (200, "SUCCESS")
    assert wait_until(lambda: all_applied(store, metrics))
    assert sorted(n.outcome or "" for n in notifications(store)) == ["applied", "discrepancy"]
    invoice, attempt = invoice_and_attempt(store)
    assert (invoice.status, invoice.amount_paid, attempt.state) == (
        "paid", attempt.amount, "succeeded")


@pytest.mark.postgresql_only  # SQLite locks the whole file, so there is no row lock to skip
def test_a_notify_arriving_while_its_attempt_is_locked_is_still_applied(
    receiver: ReceiverServer, deps: Deps, store: Store, http: requests.Session,
    metrics: Metrics,
) -> None:
    """The purchase's own record step (or a reconcile query) can hold the attempt's row lock
    exactly when the gateway's notify comes in: applying must wait for it, not skip it."""
    subscribe(deps, cards.PENDING_THEN_APPROVE)
    collect_due(deps)
    _, attempt = invoice_and_attempt(store)
    body = signed(notify_fields(mchOrderNo=attempt.mch_order_no, payOrderId=attempt.pay_order_id))
    with UnitOfWork(store) as uow:  # another transaction holds the attempt's row
        uow.session.get(PaymentAttempt, attempt.id, with_for_update=True)
        answer = http.post(receiver.url + NOTIFY, data=body, timeout=10)
        assert (answer.status_code, answer.text) == (200, "SUCCESS")
        time.sleep(0.2)  # let the background apply run into the lock
    assert wait_until(lambda: all_applied(store, metrics))
    assert [n.outcome for n in notifications(store)] == ["applied"]
    invoice, _ = invoice_and_attempt(store)
    assert invoice.status == "paid"


def test_a_notify_with_a_byte_order_mark_is_stored_so_it_can_be_applied(
    receiver: ReceiverServer, deps: Deps, sandbox: SandboxServer, store: Store, metrics: Metrics
) -> None:
    subscribe(deps, cards.PENDING_THEN_APPROVE)
    assert collect_due(deps).outcomes == {"pending": 1}
    _, attempt = invoice_and_attempt(store)
    body = signed(notify_fields(mchOrderNo=attempt.mch_order_no, payOrderId=attempt.pay_order_id,
                                status=2))
    answer = requests.post(f"{receiver.url}{NOTIFY}", data=b"\xef\xbb\xbf" + body, timeout=10)
    assert answer.text == "SUCCESS"
    assert wait_until(lambda: all_applied(store, metrics))
    invoice, attempt = invoice_and_attempt(store)
    assert (invoice.status, attempt.state) == ("paid", "succeeded")
    assert [n.outcome for n in notifications(store)] == ["applied"]
