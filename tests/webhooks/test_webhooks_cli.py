"""``billing webhooks ...`` run as an operator would, on SQLite and PostgreSQL: the happy path,
and every mistake answered with one line and exit 2."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from billing.clock import FixedClock
from billing.services.customers import add_customer
from billing.store.engine import Store
from billing.store.uow import UnitOfWork

from .conftest import Receiver, Result, verified

Run = Callable[..., Result]


def test_add_prints_the_secret_once_list_masks_it_and_send_delivers_signed(
        run_cli: Run, store: Store, clock: FixedClock, receiver: Receiver) -> None:
    added = run_cli("webhooks", "add", receiver.url("/hooks"), "--events",
                    "customer.created, invoice.paid", "--json")
    assert added.code == 0, added.err
    view = added.json()
    secret = view["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    assert view["events"] == ["customer.created", "invoice.paid"]

    table = run_cli("webhooks", "add", receiver.url("/other"))
    assert table.code == 0 and "whsec_" in table.out and "all" in table.out

    listed = run_cli("webhooks", "list", "--json")
    assert listed.code == 0, listed.err
    assert [(e["url"], e["events"]) for e in listed.json()] == [
        (receiver.url("/hooks"), ["customer.created", "invoice.paid"]),
        (receiver.url("/other"), [])]
    assert listed.json()[0]["secret"] == f"whsec_****{secret[-4:]}"
    shown = run_cli("webhooks", "list")
    assert secret not in listed.out + shown.out and "whsec_****" in shown.out

    with UnitOfWork(store) as uow:
        add_customer(uow, clock, external_id="ann", email="ann@example.com", name="Ann",
                     timezone="America/Toronto")
    sent = run_cli("--now", (clock.now()).isoformat(), "webhooks", "send", "--json")
    assert sent.code == 0, sent.err
    assert sent.json()["delivered"] == 2
    [request] = receiver.at("/hooks")
    assert verified(secret, request, clock)["type"] == "customer.created"

    deliveries = run_cli("webhooks", "deliveries", "--delivered", "--json")
    assert [(d["type"], d["status"], d["attempts"]) for d in deliveries.json()] == [
        ("customer.created", "delivered", 1)] * 2
    assert run_cli("webhooks", "deliveries", "--failed", "--json").json() == []

    removed = run_cli("webhooks", "remove", str(view["id"]))
    assert removed.code == 0 and "removed webhook endpoint" in removed.out
    assert [e["url"] for e in run_cli("webhooks", "list", "--json").json()] == [
        receiver.url("/other")]


def test_retry_requeues_a_failed_delivery_and_refuses_a_delivered_one(
        run_cli: Run, store: Store, clock: FixedClock, receiver: Receiver) -> None:
    assert run_cli("webhooks", "add", receiver.url("/x")).code == 0
    with UnitOfWork(store) as uow:
        add_customer(uow, clock, external_id="ann", email="ann@example.com", name="Ann",
                     timezone="America/Toronto")
    assert run_cli("webhooks", "send").code == 0
    [delivery] = run_cli("webhooks", "deliveries", "--json").json()
    again = run_cli("webhooks", "retry", "--delivery", str(delivery["id"]))
    assert again.code == 2 and "already delivered" in again.err
    none = run_cli("webhooks", "retry", "--failed")
    assert none.code == 0 and "queued 0 deliveries again" in none.out


@pytest.mark.parametrize(("args", "message"), [
    (("webhooks", "add", "ftp://example.com/h"), "must start with http:// or https://"),
    (("webhooks", "add", "https:///path"), "has no host"),
    (("webhooks", "add", "example.com/hooks"), "must start with http"),
    (("webhooks", "add", "https://example.com/h", "--events", "invoice.paid,invoice.payed"),
     "unknown event type 'invoice.payed'"),
    (("webhooks", "remove", "99"), "no webhook endpoint 99"),
    (("webhooks", "remove", "99999999999"), "no webhook endpoint 99999999999"),
    (("webhooks", "retry",), "choose one of --delivery ID or --failed"),
    (("webhooks", "retry", "--delivery", "5", "--failed"), "choose one of"),
    (("webhooks", "retry", "--delivery", "5"), "no webhook delivery 5"),
    (("webhooks", "deliveries", "--failed", "--pending"), "choose one of"),
])
def test_mistakes_get_one_line_and_exit_2(run_cli: Run, args: tuple[str, ...],
                                          message: str) -> None:
    result = run_cli(*args)
    assert result.code == 2, (result.out, result.err)
    assert message in result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    assert run_cli("webhooks", "list", "--json").json() == []


def test_types_lists_every_public_type(run_cli: Run) -> None:
    result = run_cli("webhooks", "types", "--json")
    assert result.code == 0
    assert {"customer.created", "invoice.paid", "payment.failed", "subscription.past_due",
            "subscription.canceled", "subscription.paused", "card.expiring",
            "refund.succeeded"} <= set(result.json())
