"""The outbox: enqueued with the state change, sent once by a tick, retried, never lost."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from billing.clock import FixedClock
from billing.errors import InvalidInput
from billing.mail import FileTransport, MemoryTransport, SmtpTransport, message_id
from billing.services.outbox import (
    LEASE,
    claim_due,
    enqueue_email,
    list_messages,
    retry_delay,
    send_pending,
)
from billing.store.engine import Store
from billing.store.models import OutboxMessage
from billing.store.uow import UnitOfWork
from tests.conftest import truncate_all

from .conftest import SmtpServer, context_for, queue

SENDER = "billing@maple.example.com"


def _rows(store: Store) -> list[OutboxMessage]:
    with UnitOfWork(store) as uow:
        rows = list(uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        uow.session.expunge_all()  # keep them readable after the unit of work rolls back
    return rows


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_enqueue_is_idempotent_by_dedupe_key(store: Store, clock: FixedClock) -> None:
    at = clock.now()
    context = context_for("payment_failed")
    with UnitOfWork(store) as uow:
        first = enqueue_email(uow.session, at=at, template="payment_failed",
                              to="ann@example.com", context=context, dedupe_key="pf:1")
        again = enqueue_email(uow.session, at=at, template="payment_failed",
                              to="ann@example.com", context=context, dedupe_key="pf:1")
        uow.commit()
    with UnitOfWork(store) as uow:
        later = enqueue_email(uow.session, at=at, template="payment_failed",
                              to="ann@example.com", context=context, dedupe_key="pf:1")
        uow.commit()
    assert first is not None and again is None and later is None
    (row,) = _rows(store)
    assert (row.template, row.to_address, row.attempts, row.sent_at) == (
        "payment_failed", "ann@example.com", 0, None)
    assert row.subject.startswith("Maple & Co: payment of CA$29.00 failed")
    assert row.send_after == at and row.created_at == at


def test_enqueue_leaves_the_commit_to_the_caller(store: Store, clock: FixedClock) -> None:
    with UnitOfWork(store) as uow:
        enqueue_email(uow.session, at=clock.now(), template="reminder", to="ann@example.com",
                      context=context_for("reminder"), dedupe_key="r:1")
        # no commit: the state change failed, so its email must not exist either
    assert _rows(store) == []


def test_enqueue_refuses_an_address_that_could_add_recipients(
    store: Store, clock: FixedClock
) -> None:
    with UnitOfWork(store) as uow, pytest.raises(InvalidInput):
        enqueue_email(uow.session, at=clock.now(), template="reminder",
                      to="ann@example.com\nBcc: all@example.com",
                      context=context_for("reminder"), dedupe_key="r:1")


def test_send_pending_delivers_over_real_smtp_once(
    store: Store, clock: FixedClock, smtp_server: SmtpServer
) -> None:
    ids = queue(store, clock.now(), {"key": "pf:1"}, {"key": "pf:2", "to": "bob@example.com"})
    transport = SmtpTransport(SecretStr(smtp_server.url()))

    summary = send_pending(store, transport, clock, worker="w1", sender=SENDER)
    again = send_pending(store, transport, clock, worker="w1", sender=SENDER)

    assert (summary.sent, summary.failed, summary.remaining) == (2, 0, 0)
    assert (again.sent, again.failed) == (0, 0)
    first, second = smtp_server.inbox.messages
    assert first["To"] == "ann@example.com" and second["To"] == "bob@example.com"
    assert first["From"] == SENDER
    assert first["Subject"] == ("Maple & Co: payment of CA$29.00 failed for invoice "
                                "INV-2026-0042")
    assert first["Message-ID"] == message_id("pf:1", SENDER)
    assert first["Date"].datetime == clock.now()
    assert "Reason: Insufficient funds" in first.get_body(("plain",)).get_content()
    assert smtp_server.inbox.envelopes[1] == (SENDER, ["bob@example.com"])
    rows = _rows(store)
    assert [r.id for r in rows] == ids
    assert all(r.sent_at == clock.now() and r.transport == "smtp" for r in rows)
    assert all(r.lease_owner is None for r in rows)


def test_smtp_down_records_the_error_backs_off_and_sends_on_a_later_pass(
    store: Store, clock: FixedClock, smtp_server: SmtpServer
) -> None:
    queue(store, clock.now(), {"key": "pf:1"})
    down = SmtpTransport(SecretStr(f"smtp://127.0.0.1:{_closed_port()}"), timeout=5)

    summary = send_pending(store, down, clock, worker="w1", sender=SENDER)

    assert (summary.sent, summary.failed, summary.remaining) == (0, 1, 0)
    (row,) = _rows(store)
    assert row.sent_at is None and row.attempts == 1
    assert row.last_error is not None and "cannot reach smtp://127.0.0.1" in row.last_error
    assert row.send_after == clock.now() + timedelta(minutes=1)
    assert list_messages_status(store) == ["failing"]

    up = SmtpTransport(SecretStr(smtp_server.url()))
    assert send_pending(store, up, clock, worker="w1", sender=SENDER).sent == 0  # not yet due
    clock.advance(timedelta(minutes=1))
    assert send_pending(store, up, clock, worker="w1", sender=SENDER).sent == 1
    (row,) = _rows(store)
    assert row.sent_at == clock.now() and row.attempts == 1 and row.transport == "smtp"
    assert len(smtp_server.inbox.messages) == 1


def list_messages_status(store: Store) -> list[str]:
    with UnitOfWork(store) as uow:
        return [v.status for v in list_messages(uow.session, status="all", limit=10)]


def test_each_failure_waits_longer_and_nothing_is_dropped(
    store: Store, clock: FixedClock
) -> None:
    queue(store, clock.now(), {"key": "pf:1"})
    transport = MemoryTransport(fail_next=6)
    waits = []
    for _ in range(6):
        before = clock.now()
        assert send_pending(store, transport, clock, worker="w", sender=SENDER).failed == 1
        (row,) = _rows(store)
        waits.append(row.send_after - before)
        clock.set(row.send_after)
    assert waits == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                     timedelta(hours=2), timedelta(hours=6), timedelta(hours=6)]
    assert send_pending(store, transport, clock, worker="w", sender=SENDER).sent == 1
    assert _rows(store)[0].attempts == 6
    assert retry_delay(100) == timedelta(hours=6)


def test_a_message_scheduled_for_later_waits(store: Store, clock: FixedClock) -> None:
    with UnitOfWork(store) as uow:
        enqueue_email(uow.session, at=clock.now(), template="reminder", to="ann@example.com",
                      context=context_for("reminder"), dedupe_key="r:1",
                      send_after=clock.now() + timedelta(days=1))
        uow.commit()
    transport = MemoryTransport()
    assert send_pending(store, transport, clock, worker="w", sender=SENDER).sent == 0
    clock.advance(timedelta(days=1))
    assert send_pending(store, transport, clock, worker="w", sender=SENDER).sent == 1


def test_a_crashed_worker_lease_expires_and_the_resend_has_the_same_message_id(
    store: Store, clock: FixedClock
) -> None:
    queue(store, clock.now(), {"key": "pf:1"})
    claimed = claim_due(store, at=clock.now(), worker="crashed", limit=10)
    assert [r.lease_owner for r in claimed] == ["crashed"]
    transport = MemoryTransport()

    assert send_pending(store, transport, clock, worker="w2", sender=SENDER).sent == 0
    clock.advance(LEASE)
    assert send_pending(store, transport, clock, worker="w2", sender=SENDER).sent == 1
    assert transport.sent[0]["Message-ID"] == message_id("pf:1", SENDER)


def test_two_workers_never_claim_the_same_message(store: Store, clock: FixedClock) -> None:
    queue(store, clock.now(), *({"key": f"pf:{n}"} for n in range(5)))
    first = claim_due(store, at=clock.now(), worker="a", limit=3)
    second = claim_due(store, at=clock.now(), worker="b", limit=3)
    assert len(first) == 3 and len(second) == 2
    assert not {r.id for r in first} & {r.id for r in second}


def test_the_limit_leaves_the_rest_for_the_next_pass(store: Store, clock: FixedClock) -> None:
    queue(store, clock.now(), *({"key": f"pf:{n}"} for n in range(3)))
    transport = MemoryTransport()
    summary = send_pending(store, transport, clock, worker="w", sender=SENDER, limit=2)
    assert (summary.sent, summary.remaining) == (2, 1)
    assert transport.batches_closed == 1


def test_file_transport_writes_parseable_eml_files(
    store: Store, clock: FixedClock, tmp_path: Path
) -> None:
    ids = queue(store, clock.now(), {"key": "pf:1"},
                {"key": "ce:1", "template": "card_expiring"})
    folder = tmp_path / "outbox"
    summary = send_pending(store, FileTransport(folder), clock, worker="w", sender=SENDER)
    assert summary.sent == 2
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"{ids[0]}-payment_failed.eml", f"{ids[1]}-card_expiring.eml"])
    raw = (folder / f"{ids[0]}-payment_failed.eml").read_bytes()
    msg = email.message_from_bytes(raw, policy=default_policy)
    assert msg["To"] == "ann@example.com"
    assert msg["Message-ID"] == message_id("pf:1", SENDER)
    assert "We will try again on January 18, 2026." in msg.get_body(("plain",)).get_content()
    assert {r.transport for r in _rows(store)} == {"file"}


def test_list_messages_filters_by_status(store: Store, clock: FixedClock) -> None:
    queue(store, clock.now(), {"key": "pf:1"}, {"key": "pf:2"})
    send_pending(store, MemoryTransport(), clock, worker="w", sender=SENDER, limit=1)
    with UnitOfWork(store) as uow:
        pending = list_messages(uow.session, status="pending", limit=10)
        sent = list_messages(uow.session, status="sent", limit=10)
        every = list_messages(uow.session, status="all", limit=10)
        count = uow.session.scalar(select(func.count(OutboxMessage.id)))
    assert [v.status for v in pending] == ["pending"] and [v.status for v in sent] == ["sent"]
    assert [v.id for v in every] == [pending[0].id, sent[0].id] and count == 2


@pytest.fixture
def pg_store(pg_session_db: str) -> Iterator[Store]:
    """PostgreSQL only: SQLite serializes writers with BEGIN IMMEDIATE instead of row locks."""
    truncate_all(pg_session_db)
    st = Store.open(pg_session_db)
    yield st
    st.close()


def test_postgresql_skips_rows_another_transaction_has_locked(
    pg_store: Store, clock: FixedClock
) -> None:
    store = pg_store
    queue(store, clock.now(), *({"key": f"pf:{n}"} for n in range(3)))
    with UnitOfWork(store) as other:
        locked = other.session.scalars(
            select(OutboxMessage.id).order_by(OutboxMessage.id).limit(2).with_for_update()).all()
        claimed = claim_due(store, at=clock.now(), worker="w", limit=10)  # must not block
    assert [r.id for r in claimed] != [] and not {r.id for r in claimed} & set(locked)


def test_a_queued_email_records_the_template_version_and_locale(
    store: Store, clock: FixedClock
) -> None:
    from billing.templates import TEMPLATE_VERSION

    queue(store, clock.now(), {"key": "tv:1"})
    with UnitOfWork(store) as uow:
        row = uow.session.scalar(select(OutboxMessage))
        assert row is not None
        assert (row.template_version, row.locale) == (TEMPLATE_VERSION, "en")


def test_an_email_whose_document_cannot_be_rendered_waits_and_is_never_sent_without_it(
    store: Store, clock: FixedClock
) -> None:
    with UnitOfWork(store) as uow:
        enqueue_email(uow.session, at=clock.now(), template="payment_succeeded",
                      to="ann@example.com", context=context_for("payment_succeeded"),
                      dedupe_key="receipt:invoice:404",
                      attachments=[{"kind": "invoice", "number": "INV-0000404"}])
        uow.commit()
    transport = MemoryTransport()
    summary = send_pending(store, transport, clock, worker="w", sender=SENDER)
    assert (summary.sent, summary.failed) == (0, 1) and transport.sent == []
    [row] = _rows(store)
    assert row.sent_at is None and row.attempts == 1
    assert row.last_error is not None and "INV-0000404" in row.last_error
    assert row.send_after == clock.now() + retry_delay(1)


def test_an_unknown_attachment_kind_is_refused_at_enqueue(store: Store, clock: FixedClock) -> None:
    with UnitOfWork(store) as uow, pytest.raises(InvalidInput, match="cannot attach"):
        enqueue_email(uow.session, at=clock.now(), template="payment_succeeded",
                      to="ann@example.com", context=context_for("payment_succeeded"),
                      dedupe_key="receipt:invoice:1",
                      attachments=[{"kind": "contract", "number": "X-1"}])


def test_the_stored_html_goes_out_as_the_alternative_to_the_text(
    store: Store, clock: FixedClock
) -> None:
    queue(store, clock.now(), {"key": "pf:1"})
    transport = MemoryTransport()
    send_pending(store, transport, clock, worker="w", sender=SENDER)
    [msg] = transport.sent
    assert msg.get_content_type() == "multipart/alternative"
    [row] = _rows(store)
    assert row.body_html is not None and row.attachments is None
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content() == row.body_text
    assert html.get_content() == row.body_html
    assert list(msg.iter_attachments()) == []
