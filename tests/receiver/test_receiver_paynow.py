"""Pay-now over real HTTP: the link, the click, the sandbox's hosted page, the return and the
notify, with the sandbox ledger as the truth (an invoice is charged once, or not at all)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import requests
from sqlalchemy import select

from billing.clock import FixedClock
from billing.domain.payments import AttemptSource
from billing.metrics import Metrics
from billing.receiver import ReceiverServer
from billing.sandbox import SandboxServer, cards
from billing.services.collection import collect_due, create_intents, record, send
from billing.services.links import pay_now_token, pay_return_url
from billing.services.ports import Deps
from billing.services.reconcile import reconcile
from billing.store.engine import Store
from billing.store.models import Customer, Invoice, PaymentAttempt
from billing.store.uow import UnitOfWork
from tests.receiver.helpers import all_applied, subscribe, wait_until


def the_invoice(store: Store) -> Invoice:
    with UnitOfWork(store) as uow:
        return uow.session.scalars(select(Invoice)).one()


def attempts(store: Store) -> list[PaymentAttempt]:
    with UnitOfWork(store) as uow:
        return list(uow.session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id)))


def charged(sandbox: SandboxServer, store: Store) -> int:
    """Approved charges in the sandbox ledger across every order of the invoice."""
    ledger = sandbox.ledger()
    return sum(ledger.charges(a.mch_order_no) for a in attempts(store))


def in_dunning(deps: Deps) -> Invoice:
    """A weekly customer whose card on file was declined once: the invoice is open, in dunning,
    with a retry scheduled."""
    subscribe(deps, cards.DECLINE_INSUFFICIENT_FUNDS)
    assert collect_due(deps).outcomes == {"failed": 1}
    invoice = the_invoice(deps.store)
    assert invoice.status == "open" and invoice.dunning_started_at is not None
    assert invoice.next_attempt_at is not None
    return invoice


def link(receiver: ReceiverServer, deps: Deps, invoice_id: int) -> str:
    return f"{receiver.url}/billing/pay/{pay_now_token(deps.config, invoice_id, deps.clock.now())}"


def snapshot(store: Store) -> tuple[Any, ...]:
    invoice = the_invoice(store)
    return (invoice.status, invoice.next_attempt_at, invoice.dunning_step,
            invoice.attempt_count, invoice.amount_paid, len(attempts(store)))


def hosted_page(http: requests.Session, receiver: ReceiverServer, deps: Deps,
                sandbox: SandboxServer, invoice_id: int) -> str:
    """The customer's click: the link shows a button, the button leads to the hosted page."""
    url = link(receiver, deps, invoice_id)
    shown = http.get(url, timeout=10)
    assert shown.status_code == 200 and '<form method="post">' in shown.text
    clicked = http.post(url, allow_redirects=False, timeout=10)
    assert clicked.status_code == 303, clicked.text
    hosted = clicked.headers["location"]
    assert hosted.startswith(f"{sandbox.root_url}/cc/purchase?key=")
    return hosted


def pay(http: requests.Session, hosted: str, number: str) -> requests.Response:
    """Fill the sandbox's hosted form and follow the gateway back to our return URL."""
    page = http.get(hosted, timeout=10)
    assert page.status_code == 200 and "Pay 18.50 CAD" in page.text
    form = {"cardNum": number, "expiryDate": "1230", "holder": "Ann", "cvv": "123"}
    back = http.post(hosted, data=form, allow_redirects=False, timeout=10)
    assert back.status_code == 303
    return http.get(back.headers["location"], timeout=10)


def test_the_link_shows_the_invoice_and_a_get_changes_nothing(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    before = snapshot(store), sandbox.ledger().to_json()
    shown = http.get(link(receiver, deps, invoice.id), timeout=10)
    assert shown.status_code == 200
    assert invoice.number in shown.text and "CA$18.50" in shown.text
    assert "Pay now" in shown.text and deps.config.merchant_name in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert (snapshot(store), sandbox.ledger().to_json()) == before

    token = pay_now_token(deps.config, invoice.id, deps.clock.now())
    forged = f"{receiver.url}/billing/pay/{token[:-1]}{'0' if token[-1] != '0' else '1'}"
    for url in (forged, f"{receiver.url}/billing/pay/%C3%A9t%C3%A9",
                f"{receiver.url}/billing/pay/{pay_now_token(deps.config, 9999, deps.clock.now())}"):
        assert http.get(url, timeout=10).status_code == 404
        assert http.post(url, timeout=10).status_code == 404
    assert (snapshot(store), sandbox.ledger().to_json()) == before


def test_an_expired_link_opens_nothing(receiver: ReceiverServer, deps: Deps, store: Store,
                                       clock: FixedClock, http: requests.Session) -> None:
    invoice = in_dunning(deps)
    url = link(receiver, deps, invoice.id)
    clock.set(clock.now() + deps.config.pay_now_link_ttl + timedelta(days=1))
    before = snapshot(store)
    assert http.get(url, timeout=10).status_code == 404
    assert http.post(url, allow_redirects=False, timeout=10).status_code == 404
    assert snapshot(store) == before


def test_pay_now_settles_the_invoice_once_and_stops_its_retries(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    hosted = hosted_page(http, receiver, deps, sandbox, invoice.id)
    [_, started] = attempts(store)
    assert started.source == AttemptSource.PAY_NOW and started.state == "pending"
    assert started.amount == invoice.total and started.expires_at is not None

    back = pay(http, hosted, cards.APPROVE)
    assert back.status_code == 200 and "Paid, thank you" in back.text
    assert wait_until(lambda: all_applied(store, metrics))  # the signed notify, applied too
    paid = the_invoice(store)
    assert paid.status == "paid" and paid.amount_paid == paid.total
    assert paid.next_attempt_at is None
    assert [(a.source, a.state) for a in attempts(store)] == [
        ("scheduled", "failed"), ("pay_now", "succeeded")]
    assert charged(sandbox, store) == 1

    # The retry that was scheduled, and any tick after it, charges nothing more.
    clock.set(invoice.next_attempt_at + timedelta(days=1))  # type: ignore[operator]
    assert collect_due(deps).attempts == 0
    reconcile(deps)
    again = http.get(back.url, timeout=10)  # a reload of the return page is harmless
    assert again.status_code == 200 and "Paid, thank you" in again.text
    assert charged(sandbox, store) == 1 and len(attempts(store)) == 2
    # The link now says there is nothing to pay, and its button opens nothing.
    url = link(receiver, deps, invoice.id)
    assert http.get(url, timeout=10).status_code == 409
    assert http.post(url, allow_redirects=False, timeout=10).status_code == 409
    assert len(attempts(store)) == 2


def test_a_forged_return_settles_nothing(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    hosted_page(http, receiver, deps, sandbox, invoice.id)
    [_, started] = attempts(store)
    unsigned = http.get(f"{receiver.url}/iotpay/return/pay",
                        params={"order": started.mch_order_no, "retCode": "SUCCESS",
                                "status": "2", "sig": "0" * 32}, timeout=10)
    assert unsigned.status_code == 404
    # Signed but unpaid: the gateway has no such order yet, whatever the query string claims.
    premature = http.get(pay_return_url(deps.config, started.mch_order_no)
                         + "&retCode=SUCCESS&status=2", timeout=10)
    assert premature.status_code == 202 and "processing" in premature.text
    assert the_invoice(store).status == "open" and charged(sandbox, store) == 0


def test_a_retry_due_at_the_same_moment_never_charges_twice(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    metrics: Metrics, http: requests.Session,
) -> None:
    """Both orders of the race: the retry commits first (the click is refused, nothing sent);
    the click commits first (the retry tick skips the invoice)."""
    subscribe(deps, cards.APPROVE)  # due now, the card on file would pay
    invoice = the_invoice(store)
    intents, _ = create_intents(deps, deps.clock.now(), 10)  # the retry's intent is committed
    url = link(receiver, deps, invoice.id)
    busy = http.post(url, allow_redirects=False, timeout=10)
    assert busy.status_code == 409 and "already in progress" in busy.text
    assert len(attempts(store)) == 1 and charged(sandbox, store) == 0
    [intent] = intents
    record(deps, intent.attempt_id, send(deps, intent))
    assert wait_until(lambda: all_applied(store, metrics))
    assert the_invoice(store).status == "paid" and charged(sandbox, store) == 1
    assert http.post(url, allow_redirects=False, timeout=10).status_code == 409
    assert charged(sandbox, store) == 1 and len(attempts(store)) == 1


def test_a_click_in_flight_keeps_the_due_retry_from_charging(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    metrics: Metrics, http: requests.Session,
) -> None:
    subscribe(deps, cards.APPROVE)
    invoice = the_invoice(store)
    hosted = hosted_page(http, receiver, deps, sandbox, invoice.id)
    assert collect_due(deps).attempts == 0  # due, but a pay-now is in flight
    assert pay(http, hosted, cards.APPROVE).status_code == 200
    assert wait_until(lambda: all_applied(store, metrics))
    assert collect_due(deps).attempts == 0
    assert the_invoice(store).status == "paid" and charged(sandbox, store) == 1
    assert [a.source for a in attempts(store)] == ["pay_now"]


def test_a_click_and_a_retry_tick_racing_charge_once(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    metrics: Metrics, http: requests.Session,
) -> None:
    """The two started together on threads: whichever commits first is the only one sent."""
    subscribe(deps, cards.APPROVE)
    invoice = the_invoice(store)
    url = link(receiver, deps, invoice.id)
    go = threading.Barrier(2)
    answers: list[requests.Response] = []

    def click() -> None:
        go.wait()
        answers.append(requests.post(url, allow_redirects=False, timeout=10))

    thread = threading.Thread(target=click)
    thread.start()
    go.wait()
    collect_due(deps)
    thread.join()
    [answer] = answers
    if answer.status_code == 303:  # the click won: the customer pays on the hosted page
        assert [a.source for a in attempts(store)] == ["pay_now"]
        pay(http, answer.headers["location"], cards.APPROVE)
    else:  # the retry won: the click was refused before anything was sent
        assert answer.status_code == 409
        assert [a.source for a in attempts(store)] == ["scheduled"]
    assert wait_until(lambda: all_applied(store, metrics))
    assert the_invoice(store).status == "paid" and charged(sandbox, store) == 1
    assert collect_due(deps).attempts == 0 and charged(sandbox, store) == 1


def test_an_abandoned_page_ends_without_a_decline_and_retries_carry_on(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    before = the_invoice(store)
    hosted_page(http, receiver, deps, sandbox, invoice.id)
    clock.set(clock.now() + timedelta(minutes=5))
    reconcile(deps)  # looked up before its lifetime ends: still waiting for the customer
    assert attempts(store)[-1].state == "pending"
    clock.set(clock.now() + deps.config.pay_now_lifetime)
    reconcile(deps)
    ended = attempts(store)[-1]
    # Watched, not in flight: it holds nothing up, but a late payment would still be seen.
    assert ended.state == "watched" and ended.decline_kind is None
    assert ended.next_check_at is not None
    assert ended.failure_reason is not None and "abandoned" in ended.failure_reason
    after = the_invoice(store)
    assert (after.status, after.next_attempt_at, after.dunning_step) == (
        "open", before.next_attempt_at, before.dunning_step)
    assert charged(sandbox, store) == 0
    # The scheduled retry, due later, is charged as it would have been.
    clock.set(before.next_attempt_at)  # type: ignore[arg-type]
    assert collect_due(deps).attempts == 1
    assert attempts(store)[-1].source == "scheduled"


def test_a_declined_card_on_the_hosted_page_leaves_the_invoice_in_dunning(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    before = the_invoice(store)
    back = pay(http, hosted_page(http, receiver, deps, sandbox, invoice.id),
               cards.DECLINE_DO_NOT_HONOR)
    assert back.status_code == 200 and "Not paid" in back.text
    ended = attempts(store)[-1]
    assert (ended.source, ended.state, ended.decline_kind) == ("pay_now", "failed", None)
    after = the_invoice(store)
    assert (after.status, after.next_attempt_at, after.dunning_step) == (
        "open", before.next_attempt_at, before.dunning_step)
    assert after.dunning_started_at == before.dunning_started_at
    assert charged(sandbox, store) == 0
    # The customer may click again: a fresh attempt, a fresh order number.
    hosted_page(http, receiver, deps, sandbox, invoice.id)
    assert len({a.mch_order_no for a in attempts(store)}) == 3


def test_a_lost_answer_to_cc_purchase_is_looked_up_never_resent(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, http: requests.Session,
) -> None:
    """The gateway opened a page but its answer was lost: the customer is told to try later,
    the attempt is unknown (it blocks no retry for longer than its lifetime), and it is only
    ever looked up with cc_query, then watched as abandoned, never sent again."""
    invoice = in_dunning(deps)
    before = the_invoice(store)
    sandbox.set_faults(drop_after_charge_rate=1.0, endpoints=("cc_purchase",))
    answer = http.post(link(receiver, deps, invoice.id), allow_redirects=False, timeout=10)
    sandbox.clear_faults()
    assert answer.status_code == 503 and "Nothing was charged" in answer.text
    unknown = attempts(store)[-1]
    assert (unknown.source, unknown.state) == ("pay_now", "unknown")
    busy = http.post(link(receiver, deps, invoice.id), allow_redirects=False, timeout=10)
    assert busy.status_code == 409 and len(attempts(store)) == 2  # unresolved: no new order
    clock.set(clock.now() + deps.config.pay_now_lifetime)
    reconcile(deps)
    ended = attempts(store)[-1]
    assert ended.state == "watched" and ended.decline_kind is None
    assert sandbox.request_count("cc_purchase") == 1
    assert sandbox.request_count("cc_query", unknown.mch_order_no) >= 1
    after = the_invoice(store)
    assert (after.next_attempt_at, after.dunning_step) == (before.next_attempt_at,
                                                           before.dunning_step)


def test_the_link_speaks_the_customers_language(
    receiver: ReceiverServer, deps: Deps, store: Store, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    with UnitOfWork(store) as uow:
        customer = uow.session.get(Customer, invoice.customer_id)
        assert customer is not None
        customer.locale = "fr"
        uow.commit()
    shown = http.get(link(receiver, deps, invoice.id), timeout=10)
    assert shown.status_code == 200
    assert "Payer maintenant" in shown.text and "18,50\xa0$CA" in shown.text
    assert shown.text.startswith("<!doctype html><html lang=\"fr\">")


def test_a_hosted_payment_still_settling_is_shown_as_processing_then_settles_once(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    back = pay(http, hosted_page(http, receiver, deps, sandbox, invoice.id),
               cards.PENDING_THEN_APPROVE)
    assert back.status_code == 202 and "Payment processing" in back.text
    assert attempts(store)[-1].state == "pending" and the_invoice(store).status == "open"
    # Past its lifetime, an order the gateway is still settling is never abandoned.
    clock.set(clock.now() + deps.config.pay_now_lifetime)
    reconcile(deps)
    assert attempts(store)[-1].state in ("pending", "succeeded")
    clock.set(clock.now() + timedelta(hours=2))
    reconcile(deps)
    assert wait_until(lambda: the_invoice(store).status == "paid")
    assert wait_until(lambda: all_applied(store, metrics))
    assert attempts(store)[-1].state == "succeeded" and charged(sandbox, store) == 1
    assert collect_due(deps).attempts == 0 and charged(sandbox, store) == 1
