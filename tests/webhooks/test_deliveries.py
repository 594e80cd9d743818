"""The delivery outbox against a real HTTP receiver, on SQLite and PostgreSQL: written with the
change, signed, retried with the same id after the backoff, at least once across a crash, and one
dead endpoint never holding up another."""

from __future__ import annotations

import logging
import re
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from billing.clock import FixedClock
from billing.errors import NotFound
from billing.services.customers import add_customer
from billing.services.events import record_event
from billing.services.webhooks import (
    LEASE,
    claim_due,
    deliver_due,
    list_deliveries,
    list_endpoints,
    remove_endpoint,
    retry_deliveries,
)
from billing.store.engine import Store
from billing.store.models import Event, WebhookDelivery
from billing.store.uow import UnitOfWork
from billing.webhooks import payloads
from billing.webhooks.retry import GIVE_UP_AFTER
from billing.webhooks.sender import post

from .conftest import Receiver, endpoint, send, verified


def _customer(store: Store, clock: FixedClock, ref: str) -> None:
    with UnitOfWork(store) as uow:
        add_customer(uow, clock, external_id=ref, email=f"{ref}@example.com", name=ref.title(),
                     timezone="America/Toronto")


def _deliveries(store: Store) -> list[WebhookDelivery]:
    with UnitOfWork(store) as uow:
        return list(uow.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_new_customer_is_posted_signed_to_each_endpoint_that_wants_it(
        store: Store, clock: FixedClock, receiver: Receiver) -> None:
    every = endpoint(store, clock, receiver.url("/all"))
    wanted = endpoint(store, clock, receiver.url("/customers"), "customer.created")
    endpoint(store, clock, receiver.url("/paid"), "invoice.paid")
    _customer(store, clock, "ann")

    summary = send(store, clock)
    assert (summary.delivered, summary.remaining) == (2, 0)
    assert receiver.at("/paid") == []
    [to_all], [to_wanted] = receiver.at("/all"), receiver.at("/customers")
    event = verified(every.secret, to_all, clock)
    assert verified(wanted.secret, to_wanted, clock) == event
    assert to_all.body == to_wanted.body
    assert event["id"].startswith("evt_") and event["type"] == "customer.created"
    assert event["created"] == int(clock.now().timestamp())
    assert event["data"]["object"]["object"] == "customer"
    assert event["data"]["object"]["customer_external_id"] == "ann"
    assert to_all.headers["Content-Type"] == "application/json"
    assert to_all.headers["User-Agent"].startswith("billing-webhooks/")
    assert to_all.headers["Billing-Signature"].startswith(f"t={int(clock.now().timestamp())},v1=")

    assert send(store, clock).delivered == 0  # delivered once, not again
    assert len(receiver.requests) == 2


def test_an_event_rolled_back_with_its_change_queues_nothing(
        store: Store, clock: FixedClock, receiver: Receiver) -> None:
    endpoint(store, clock, receiver.url("/all"))
    with UnitOfWork(store) as uow:
        record_event(uow.session, clock.now(), "customer.created", external_id="ghost")
        uow.rollback()
    with UnitOfWork(store) as uow:
        record_event(uow.session, clock.now(), "payment.attempt_started", invoice_id=None)
        uow.commit()  # committed, but not a public type
    assert _deliveries(store) == []


def test_a_500_is_retried_after_the_backoff_with_the_same_id_and_body(
        store: Store, clock: FixedClock, receiver: Receiver) -> None:
    ep = endpoint(store, clock, receiver.url("/flaky"))
    receiver.answers["/flaky"] = [500, 200]
    _customer(store, clock, "ann")

    first = send(store, clock)
    assert (first.delivered, first.retrying) == (0, 1)
    [row] = _deliveries(store)
    assert (row.attempts, row.last_status, row.delivered_at) == (1, 500, None)
    assert row.next_attempt_at == clock.now() + timedelta(minutes=1)

    clock.advance(timedelta(seconds=59))
    assert send(store, clock).delivered == 0 and len(receiver.at("/flaky")) == 1
    clock.advance(timedelta(seconds=1))
    assert send(store, clock).delivered == 1

    tried, retried = receiver.at("/flaky")
    assert tried.body == retried.body
    assert verified(ep.secret, retried, clock)["id"] == tried.json()["id"]
    assert tried.headers["Billing-Signature"] != retried.headers["Billing-Signature"]  # new t
    [row] = _deliveries(store)
    assert (row.attempts, row.last_status, row.delivered_at) == (2, 200, clock.now())


def test_a_dead_endpoint_does_not_hold_up_another(
        store: Store, clock: FixedClock, receiver: Receiver, dead_url: str) -> None:
    endpoint(store, clock, dead_url)
    endpoint(store, clock, receiver.url("/down"))
    live = endpoint(store, clock, receiver.url("/live"))
    receiver.answers["/down"] = [503]
    for ref in ("ann", "bo", "cy"):
        _customer(store, clock, ref)

    summary = send(store, clock)
    assert summary.delivered == 3 and summary.retrying == 2 and summary.waiting == 4
    assert [verified(live.secret, r, clock)["data"]["object"]["customer_external_id"]
            for r in receiver.at("/live")] == ["ann", "bo", "cy"]
    assert len(receiver.at("/down")) == 1  # the others waited instead of failing one by one
    pending = list_deliveries_of(store, "pending")
    assert len(pending) == 6
    assert {d.next_attempt_at for d in pending} == {clock.now() + timedelta(minutes=1)}
    assert sorted(d.attempts for d in pending) == [0, 0, 0, 0, 1, 1]
    assert any("ConnectionError" in (d.last_error or "") for d in pending)


def test_a_dead_endpoints_backlog_waits_whole_instead_of_filling_the_next_batches(
        store: Store, clock: FixedClock, receiver: Receiver, dead_url: str) -> None:
    endpoint(store, clock, dead_url)
    endpoint(store, clock, receiver.url("/live"))
    for ref in ("ann", "bo", "cy"):
        _customer(store, clock, ref)
    first = deliver_due(store, clock, worker="test", limit=2)  # the dead one's first, live's first
    assert (first.delivered, first.retrying, first.waiting) == (1, 1, 2)
    second = deliver_due(store, clock, worker="test", limit=2)
    assert (second.delivered, second.retrying, second.remaining) == (2, 0, 0)
    assert len(receiver.at("/live")) == 3
    held = list_deliveries_of(store, "pending")
    assert sorted(d.attempts for d in held) == [0, 0, 1]
    assert {d.next_attempt_at for d in held} == {clock.now() + timedelta(minutes=1)}


def list_deliveries_of(store: Store, status: str) -> list[WebhookDelivery]:
    with UnitOfWork(store) as uow:
        query = select(WebhookDelivery).where(WebhookDelivery.delivered_at.is_(None))
        if status == "pending":
            query = query.where(WebhookDelivery.failed_at.is_(None))
        return list(uow.session.scalars(query))


def test_a_crash_after_the_post_sends_the_same_event_again_after_the_lease(
        store: Store, clock: FixedClock, receiver: Receiver) -> None:
    ep = endpoint(store, clock, receiver.url("/app"))
    _customer(store, clock, "ann")
    [claimed] = claim_due(store, at=clock.now(), worker="doomed")
    with requests.Session() as http:  # what the doomed worker sent before it died
        assert post(http, claimed.url, claimed.secret,
                    payloads.body(claimed.event_id, claimed.event_key, claimed.payload),
                    timestamp=int(clock.now().timestamp())).delivered

    assert send(store, clock).delivered == 0  # still leased to the dead worker
    clock.advance(LEASE)
    assert send(store, clock).delivered == 1
    before, after = receiver.at("/app")
    assert verified(ep.secret, after, clock)["id"] == before.json()["id"]
    assert after.body == before.body


def test_after_three_days_of_failures_it_is_failed_until_an_operator_retries_it(
        store: Store, clock: FixedClock, receiver: Receiver) -> None:
    endpoint(store, clock, receiver.url("/broken"))
    receiver.answers["/broken"] = [500]
    _customer(store, clock, "ann")
    first_try = clock.now()
    while True:
        summary = send(store, clock)
        [row] = _deliveries(store)
        if row.failed_at is not None:
            break
        assert summary.retrying == 1
        clock.set(row.next_attempt_at)
    assert summary.gave_up == 1
    assert row.attempts == 11 == len(receiver.at("/broken"))
    assert first_try + GIVE_UP_AFTER - timedelta(hours=12) < clock.now() <= (
        first_try + GIVE_UP_AFTER)
    clock.advance(timedelta(days=30))
    assert send(store, clock).delivered == 0 and len(receiver.at("/broken")) == 11

    receiver.answers["/broken"] = [200]
    assert retry_deliveries(store, clock.now(), failed=True) == 1
    assert send(store, clock).delivered == 1
    assert receiver.at("/broken")[-1].body == receiver.at("/broken")[0].body
    [view] = list_deliveries(store, status="delivered")
    assert (view.attempts, view.status, view.last_status) == (12, "delivered", 200)


def test_removing_an_endpoint_drops_its_queue(
        store: Store, clock: FixedClock, receiver: Receiver) -> None:
    gone = endpoint(store, clock, receiver.url("/gone"))
    endpoint(store, clock, receiver.url("/kept"))
    _customer(store, clock, "ann")
    remove_endpoint(store, gone.id)
    with UnitOfWork(store) as uow:
        assert uow.session.scalar(select(func.count(WebhookDelivery.id))) == 1
    with UnitOfWork(store) as uow:  # a change that read the endpoints just before the removal
        record_event(uow.session, clock.now(), "customer.created", customer_id=None)
        uow.session.flush()
        uow.session.add(WebhookDelivery(
            event=uow.session.scalars(select(Event).order_by(Event.id.desc())).first(),
            endpoint_id=gone.id, type="customer.created", payload={}, event_key="k",
            created_at=clock.now(),
            attempts=0, next_attempt_at=clock.now()))
        uow.commit()  # still commits: the endpoint row is there, disabled
    assert send(store, clock).delivered == 2
    assert receiver.at("/gone") == [] and len(receiver.at("/kept")) == 2
    assert [e.id for e in list_endpoints(store)] != [gone.id] and len(list_endpoints(store)) == 1
    with pytest.raises(NotFound):
        remove_endpoint(store, gone.id)


def test_two_workers_never_claim_the_same_delivery(
        store: Store, clock: FixedClock, receiver: Receiver) -> None:
    endpoint(store, clock, receiver.url("/a"))
    endpoint(store, clock, receiver.url("/b"))
    for ref in ("ann", "bo"):
        _customer(store, clock, ref)
    first = claim_due(store, at=clock.now(), worker="one", limit=3)
    second = claim_due(store, at=clock.now(), worker="two", limit=3)
    assert len(first) == 3 and len(second) == 1
    assert not {c.id for c in first} & {c.id for c in second}
    assert claim_due(store, at=clock.now(), worker="three") == []


def test_secrets_and_url_passwords_stay_out_of_logs_errors_and_listings(
        store: Store, clock: FixedClock, dead_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = dead_url.replace("http://", "http://app:hunter2@")
    added = endpoint(store, clock, url)
    _customer(store, clock, "ann")
    with caplog.at_level(logging.DEBUG):
        assert send(store, clock).retrying == 1
    [row] = _deliveries(store)
    assert row.last_error and "ConnectionError" in row.last_error
    for text in (caplog.text, row.last_error):
        assert added.secret not in text and "hunter2" not in text
    [listed] = list_endpoints(store)
    assert listed.url == url.replace("hunter2", "****") and "hunter2" not in listed.secret
    assert listed.secret == f"whsec_****{added.secret[-4:]}"


def test_a_database_restored_from_a_backup_never_reuses_an_event_id(
        sqlite_template: Path, tmp_path: Path, clock: FixedClock, receiver: Receiver) -> None:
    """The restored database numbers its next event as the lost one was numbered; the random
    key keeps the public ids apart, so the app does not drop the new event as a duplicate.
    (A file copy is a faithful backup on SQLite; the id scheme is the same on PostgreSQL.)"""
    live, backup = tmp_path / "live.db", tmp_path / "backup.db"
    shutil.copy(sqlite_template, live)
    store = Store.open(f"sqlite:///{live}")
    endpoint(store, clock, receiver.url("/app"))
    store.close()
    shutil.copy(live, backup)
    for name, ref in ((live, "ann"), (backup, "bo")):  # "bo" after restoring the backup
        store = Store.open(f"sqlite:///{name}")
        _customer(store, clock, ref)
        assert send(store, clock).delivered == 1
        store.close()
    lost, new = (r.json() for r in receiver.at("/app"))
    assert lost["id"].split("_")[1] == new["id"].split("_")[1]  # the same event number...
    assert lost["id"] != new["id"]  # ...but not the same id
    assert re.fullmatch(r"evt_\d+_[0-9a-f]{8}", new["id"])


def test_workers_claiming_at_the_same_instant_share_the_queue_without_overlap(
        store: Store, clock: FixedClock, receiver: Receiver) -> None:
    endpoint(store, clock, receiver.url("/a"))
    for n in range(10):
        _customer(store, clock, f"c{n}")
    start = threading.Barrier(4)
    got: dict[str, list[int]] = {}

    def work(name: str) -> None:
        start.wait()
        got[name] = [c.id for c in claim_due(store, at=clock.now(), worker=name, limit=3)]

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for ids in got.values() for i in ids]
    assert len(got) == 4 and len(claimed) == len(set(claimed)) == 10
