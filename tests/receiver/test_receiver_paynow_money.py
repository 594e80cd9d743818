"""Money regressions of the pay-now flow (an adversarial review's repros, asserting what must
happen): a hosted page abandoned and then paid is never lost and never followed by a second
charge, a success the invoice did not need is recorded as a duplicate, alerted and refunded
however many arrive, and a page the gateway keeps reporting as unsettled holds nothing forever.
Real receiver, real sandbox over HTTP, both databases."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from billing.clock import FixedClock
from billing.domain.payments import (
    PAY_NOW_GRACE,
    PAY_NOW_WATCH,
    AttemptSource,
    AttemptState,
    Claims,
    Effect,
    Outcome,
    OutcomeKind,
    Source,
    decide,
)
from billing.gateway.replies import GatewayReply, OrderInfo
from billing.metrics import Metrics
from billing.receiver import ReceiverServer
from billing.reports import queries
from billing.reports.period import report_range
from billing.sandbox import DEFAULT_MERCHANT, SandboxServer, cards
from billing.services.collection import collect_due
from billing.services.dunning import _last_reason as last_decline_reason
from billing.services.dunning import run_dunning
from billing.services.explain import explain_invoice
from billing.services.invoicing import reduce_open_invoice
from billing.services.payments import facts
from billing.services.paynow import (
    InvoiceNotPayable,
    PaymentInProgress,
    PayNowUnavailable,
    start_pay_now,
)
from billing.services.ports import Deps
from billing.services.reconcile import reconcile
from billing.services.watched import check_invoice
from billing.store.engine import Store
from billing.store.models import Alert, Event, Invoice, PaymentAttempt, Refund
from billing.store.uow import UnitOfWork
from tests.receiver.helpers import all_applied, subscribe, wait_until
from tests.receiver.test_receiver_paynow import (
    attempts,
    charged,
    hosted_page,
    in_dunning,
    pay,
    the_invoice,
)


def alert_keys(store: Store) -> list[str]:
    with UnitOfWork(store) as uow:
        return sorted(a.key for a in uow.session.scalars(select(Alert)))


def refunds(store: Store) -> list[Refund]:
    with UnitOfWork(store) as uow:
        return list(uow.session.scalars(select(Refund).order_by(Refund.id)))


def states(store: Store) -> list[tuple[str, str]]:
    return [(a.source, a.state) for a in attempts(store)]


def refunded(sandbox: SandboxServer, mch_order_no: str) -> int:
    order = sandbox.ledger().order(mch_order_no)
    return order.refunded if order is not None else 0


def abandon(deps: Deps, clock: FixedClock) -> None:
    """Let every open hosted page outlive its lifetime and have reconcile notice."""
    clock.set(clock.now() + deps.config.pay_now_lifetime + timedelta(minutes=1))
    reconcile(deps)


def submit_only(http: requests.Session, hosted: str, number: str) -> None:
    """The customer pays the hosted form, then closes the tab (the return URL is never hit)."""
    form = {"cardNum": number, "expiryDate": "1230", "holder": "Ann", "cvv": "123"}
    back = http.post(hosted, data=form, allow_redirects=False, timeout=10)
    assert back.status_code == 303


def in_dunning_until_third_try(deps: Deps) -> Invoice:
    subscribe(deps, cards.DECLINE_TWICE_THEN_APPROVE)
    assert collect_due(deps).outcomes == {"failed": 1}
    return the_invoice(deps.store)


def test_an_abandoned_page_paid_late_without_a_notify_is_found_by_reconcile(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = in_dunning_until_third_try(deps)
    hosted = hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    assert states(store)[-1] == ("pay_now", "watched")
    sandbox.set_faults(delayed_notify_rate=1.0, notify_delay_ms=3_600_000)  # never, here
    submit_only(http, hosted, cards.APPROVE)
    for _ in range(3):  # a day of reconcile ticks: the watched order is looked up
        clock.set(clock.now() + timedelta(hours=8))
        reconcile(deps)
    assert states(store) == [("scheduled", "failed"), ("pay_now", "succeeded")]
    paid = the_invoice(store)
    assert (paid.status, paid.amount_paid, paid.next_attempt_at) == ("paid", paid.total, None)
    clock.set(clock.now() + timedelta(days=30))
    assert collect_due(deps).attempts == 0
    assert charged(sandbox, store) == 1 and alert_keys(store) == []


def test_a_retry_due_first_queries_the_watched_page_and_charges_nothing_if_it_was_paid(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = in_dunning_until_third_try(deps)
    hosted = hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    sandbox.set_faults(delayed_notify_rate=1.0, notify_delay_ms=3_600_000)
    submit_only(http, hosted, cards.APPROVE)
    # No reconcile tick in between: the retry itself must ask first.
    clock.set(max(clock.now(), the_invoice(store).next_attempt_at))  # type: ignore[type-var]
    summary = collect_due(deps)
    assert summary.attempts == 0
    assert states(store) == [("scheduled", "failed"), ("pay_now", "succeeded")]
    assert the_invoice(store).status == "paid" and charged(sandbox, store) == 1


def test_a_retry_is_not_charged_while_the_watched_page_cannot_be_asked(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    clock.set(the_invoice(store).next_attempt_at)  # type: ignore[arg-type]
    sandbox.set_faults(drop_after_charge_rate=1.0, endpoints=("cc_query",))
    assert collect_due(deps).attempts == 0  # might be the second charge: not sent blindly
    sandbox.clear_faults()
    assert collect_due(deps).attempts == 1  # asked, unpaid: the schedule goes on
    assert states(store)[-1] == ("scheduled", "failed")


def test_two_tabs_the_second_paid_first_the_late_one_is_a_refunded_duplicate(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    tab_a = hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    tab_b = hosted_page(http, receiver, deps, sandbox, invoice.id)  # asks about tab A first
    assert pay(http, tab_b, cards.APPROVE).status_code == 200
    assert wait_until(lambda: all_applied(store, metrics))
    back = pay(http, tab_a, cards.APPROVE)  # the old tab is still payable
    assert wait_until(lambda: all_applied(store, metrics))
    assert back.status_code == 200 and "being refunded" in back.text
    first, second = attempts(store)[1:]
    assert (first.state, second.state) == ("duplicate", "succeeded")
    assert alert_keys(store) == [f"double_charge:{first.mch_order_no}"]
    reconcile(deps)  # the refund committed with the duplicate is sent
    (refund,) = refunds(store)
    assert (refund.payment_attempt_id, refund.state, refund.amount) == (
        first.id, "succeeded", first.amount)
    assert refund.credit_note_number is not None
    assert refunded(sandbox, first.mch_order_no) == first.amount
    assert refunded(sandbox, second.mch_order_no) == 0
    paid = the_invoice(store)
    assert (paid.status, paid.amount_paid, paid.amount_refunded) == ("paid", paid.total, 0)
    reconcile(deps)  # exactly once: nothing sent again
    assert refunded(sandbox, first.mch_order_no) == first.amount and len(refunds(store)) == 1
    # Reports: both charges came in as cash and one went back; the invoice was not refunded,
    # and it was recovered once, by pay-now.
    now = clock.now()
    span = report_range(now.date() - timedelta(days=60), now.date(), "UTC",
                        now + timedelta(seconds=1))
    with store.engine.connect() as conn:
        money = queries.cash(conn, span)["CAD"]
        outcomes = queries.invoice_outcomes(conn, span)["CAD"]
        funnel = queries.dunning_funnel(conn, span)["CAD"]
    assert (money.collected, money.refunded) == (first.amount + second.amount, first.amount)
    assert outcomes["refunded"].count == 0
    assert funnel.stages["recovered_by_pay_now"].count == 1


def test_a_second_click_after_the_old_page_was_paid_settles_with_it_and_opens_nothing(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    tab_a = hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    sandbox.set_faults(delayed_notify_rate=1.0, notify_delay_ms=3_600_000)
    submit_only(http, tab_a, cards.APPROVE)
    try:
        start_pay_now(deps, invoice.id)
    except InvoiceNotPayable:
        pass
    else:
        raise AssertionError("a second page was opened for an invoice already paid")
    assert states(store) == [("scheduled", "failed"), ("pay_now", "succeeded")]
    assert the_invoice(store).status == "paid" and charged(sandbox, store) == 1


def test_every_late_duplicate_is_recorded_alerted_and_refunded(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    tabs = []
    for _ in range(2):  # two clicks, each page left open and abandoned
        tabs.append(hosted_page(http, receiver, deps, sandbox, invoice.id))
        abandon(deps, clock)
    assert pay(http, hosted_page(http, receiver, deps, sandbox, invoice.id),
               cards.APPROVE).status_code == 200
    assert wait_until(lambda: all_applied(store, metrics))
    backs = []
    for tab in tabs:
        backs.append(pay(http, tab, cards.APPROVE))
        assert wait_until(lambda: all_applied(store, metrics))
    assert [b.status_code for b in backs] == [200, 200]
    assert all("being refunded" in b.text and "Nothing was charged" not in b.text
               for b in backs)
    dupes = [a for a in attempts(store) if a.state == "duplicate"]
    assert len(dupes) == 2 and states(store)[-1] == ("pay_now", "succeeded")
    assert alert_keys(store) == sorted(f"double_charge:{a.mch_order_no}" for a in dupes)
    reconcile(deps)
    assert [r.state for r in refunds(store)] == ["succeeded", "succeeded"]
    assert all(refunded(sandbox, a.mch_order_no) == a.amount for a in dupes)
    assert charged(sandbox, store) == 3 and the_invoice(store).amount_refunded == 0
    with UnitOfWork(store) as uow:  # `billing explain` tells the story
        told = [step.text for step in explain_invoice(uow, invoice.number).history]
    for dupe in dupes:
        assert any(dupe.mch_order_no in t and "duplicate" in t for t in told), told


def test_an_invoice_credited_to_zero_then_paid_on_the_old_page_refunds_the_payment(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    tab = hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    credit(store, clock, lambda inv: inv.total - inv.tax)  # the whole price: paid at zero
    assert the_invoice(store).status == "paid" and the_invoice(store).total == 0
    back = pay(http, tab, cards.APPROVE)
    assert wait_until(lambda: all_applied(store, metrics))
    assert "being refunded" in back.text
    late = attempts(store)[-1]
    assert late.state == "duplicate" and alert_keys(store) == [
        f"double_charge:{late.mch_order_no}"]
    reconcile(deps)
    assert refunded(sandbox, late.mch_order_no) == late.amount
    inv = the_invoice(store)
    assert (inv.status, inv.amount_paid, inv.amount_refunded) == ("paid", 0, 0)


def test_an_invoice_partly_credited_then_paid_on_the_old_page_is_refunded_not_overpaid(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    tab = hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    credit(store, clock, lambda inv: 800)
    pay(http, tab, cards.APPROVE)  # the old page still asks for the old amount
    assert wait_until(lambda: all_applied(store, metrics))
    inv = the_invoice(store)
    assert (inv.status, inv.amount_paid) == ("open", 0)  # still owed, dunning goes on
    late = attempts(store)[-1]
    assert late.state == "duplicate" and late.amount > inv.total
    assert alert_keys(store) == [f"double_charge:{late.mch_order_no}"]
    reconcile(deps)
    assert refunded(sandbox, late.mch_order_no) == late.amount


def credit(store: Store, clock: FixedClock, amount_of: Any) -> None:
    """A downgrade's credit on the open invoice (``credits.give_credit``'s own step)."""
    with UnitOfWork(store) as uow:
        inv = uow.session.get(Invoice, the_invoice(store).id, with_for_update=True)
        assert inv is not None
        reduce_open_invoice(uow.session, inv, amount_of(inv), clock.now(),
                            description="downgrade credit", period_end=inv.period_end)
        uow.commit()


class Status0Gateway:
    """A gateway that creates the order when ``cc_purchase`` opens the page (status 0) rather
    than when the customer submits it: ``cc_query`` never says "no such order"."""

    def __init__(self, inner: Any, amount: int) -> None:
        self.inner, self.amount = inner, amount

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def cc_query(self, *, mch_order_no: str, **kw: Any) -> Any:
        reply = self.inner.cc_query(mch_order_no=mch_order_no, **kw)
        if not reply.order_not_found:
            return reply
        data = OrderInfo.model_validate({"mchOrderNo": mch_order_no, "amount": self.amount,
                                         "currency": "CAD", "mchId": DEFAULT_MERCHANT.mch_id,
                                         "payOrderId": "P-OPENED-1", "status": 0})
        return GatewayReply("cc_query", "SUCCESS", "", data)


def test_a_page_reported_unsettled_forever_stops_holding_the_invoice_after_the_grace(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    real = deps
    deps = replace(deps, gateway=Status0Gateway(deps.gateway, invoice.total))
    start_pay_now(deps, invoice.id)  # the customer clicks, looks at the page, walks away
    expires = attempts(store)[-1].expires_at
    assert expires is not None
    clock.set(expires + PAY_NOW_GRACE - timedelta(minutes=1))
    reconcile(deps)
    assert states(store)[-1] == ("pay_now", "pending")  # within the grace it still holds
    clock.set(expires + PAY_NOW_GRACE)
    reconcile(deps)
    assert states(store)[-1] == ("pay_now", "watched")
    for _ in range(3):  # three days of ticks: the schedule goes on, a click is not refused
        clock.set(clock.now() + timedelta(days=1))
        reconcile(deps)
        collect_due(deps)
        run_dunning(deps)
    assert [s for s in states(store)[2:] if s[0] == "scheduled"], states(store)
    assert the_invoice(store).dunning_step > invoice.dunning_step
    try:
        start_pay_now(deps, invoice.id)
    except PaymentInProgress as exc:
        raise AssertionError("a click is still refused as in progress") from exc
    except InvoiceNotPayable:
        pass  # dunning may have ended the invoice meanwhile: not held, either way
    clock.set(expires + PAY_NOW_WATCH + timedelta(days=1))
    reconcile(deps)
    # Still "processing" past the watch window proves nothing was paid no more than that it
    # was: the order stays watched (never forgotten) and a person is asked, once, to look.
    assert attempts(store)[1].state == "watched"
    overdue = f"pay_now_watch_overdue:{attempts(store)[1].mch_order_no}"
    assert overdue in alert_keys(store)
    for _ in range(2):  # asked again (as a click does) within the day: counted, not re-alerted
        clock.set(clock.now() + timedelta(hours=2))
        check_invoice(deps, invoice.id)
    assert attempts(store)[1].state == "watched"
    with UnitOfWork(store) as uow:
        assert uow.session.scalars(select(Alert.count).where(Alert.key == overdue)).one() == 3
    check_invoice(real, invoice.id)  # the gateway says at last it has no such order: closed
    assert attempts(store)[1].state == "failed"
    with UnitOfWork(store) as uow:
        assert uow.session.scalars(select(Alert.resolved_at).where(
            Alert.key == overdue)).one() is not None
        events = uow.session.scalars(select(Event.id).where(
            Event.type == "alert.pay_now_watch_overdue")).all()
    assert len(events) == 1


def test_dunning_names_the_cards_decline_not_an_abandoned_pay_now(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    scheduled, hosted = attempts(store)
    assert hosted.failure_reason is not None and "abandoned" in hosted.failure_reason
    with UnitOfWork(store) as uow:
        inv = uow.session.get(Invoice, invoice.id)
        assert inv is not None
        assert last_decline_reason(uow.session, inv) == scheduled.failure_reason


def test_a_card_id_in_an_answer_about_a_pay_now_order_is_no_discrepancy(deps: Deps) -> None:
    """A pay-now attempt asked for no card (the customer typed one on the gateway's page), so a
    ``cardId`` in the gateway's answer contradicts nothing."""
    attempt = PaymentAttempt(mch_order_no="K3F9QZ-42-02-7M2Q9X", amount=1850, currency="CAD",
                             gateway_card_id="", state=AttemptState.PENDING,
                             source=AttemptSource.PAY_NOW,
                             attempt_no=2, check_count=0)
    asked = facts(attempt, deps.config)
    said = Claims(mch_order_no=attempt.mch_order_no, amount=1850, currency="CAD",
                  card_id="C-TYPED-1", pay_order_id="P1", status=2)
    decision = decide(asked, Outcome(OutcomeKind.PAID, Source.QUERY, said), deps.clock.now())
    assert asked.card_id is None and decision.effect is Effect.SETTLE


def test_returning_from_a_watched_page_that_cannot_be_checked_never_says_nothing_was_charged(
    receiver: ReceiverServer, deps: Deps, store: Store, sandbox: SandboxServer,
    clock: FixedClock, metrics: Metrics, http: requests.Session,
) -> None:
    invoice = in_dunning(deps)
    tab = hosted_page(http, receiver, deps, sandbox, invoice.id)
    abandon(deps, clock)
    sandbox.set_faults(drop_after_charge_rate=1.0, endpoints=("cc_query",),
                       delayed_notify_rate=1.0, notify_delay_ms=3_600_000)
    back = pay(http, tab, cards.APPROVE)
    assert back.status_code == 202 and "Nothing was charged" not in back.text
    assert "nothing was charged" not in back.text
    sandbox.clear_faults()
    clock.set(clock.now() + timedelta(days=1))
    reconcile(deps)
    assert states(store)[-1] == ("pay_now", "succeeded") and the_invoice(store).status == "paid"


class RefusingGateway:
    """Every purchase, hosted or by token, refused as a set-up error (``retCode=FAIL``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def cc_purchase(self, **kw: Any) -> Any:
        return GatewayReply("cc_purchase", "FAIL", "sign error", None)

    def cc_purchasewithtoken(self, **kw: Any) -> Any:
        return GatewayReply("cc_purchasewithtoken", "FAIL", "sign error", None)


def test_a_refused_pay_now_does_not_lengthen_the_schedules_set_up_backoff(
    receiver: ReceiverServer, deps: Deps, store: Store, clock: FixedClock,
) -> None:
    invoice = in_dunning(deps)
    deps = replace(deps, gateway=RefusingGateway(deps.gateway))
    with pytest.raises(PayNowUnavailable):
        start_pay_now(deps, invoice.id)
    assert attempts(store)[-1].decline_kind == "setup"  # the customer's try, refused
    clock.set(the_invoice(store).next_attempt_at)  # type: ignore[arg-type]
    collect_due(deps)
    assert states(store)[-1] == ("scheduled", "failed")
    # The schedule's first refusal: an hour, as if the customer had not clicked (not 4 h).
    assert the_invoice(store).next_attempt_at == clock.now() + timedelta(hours=1)
