"""The email outbox: enqueue in the caller's transaction, send later, never lose one.

``enqueue_email`` renders a template and adds the row to the session of the state change that
causes it (an invoice failing, a card expiring), so the email exists if and only if the change was
committed. A ``dedupe_key`` per logical email (``payment_failed:invoice:42:attempt:3``) makes
re-running a tick harmless: the second enqueue finds the row and adds nothing. If two
transactions race on PostgreSQL, the unique index makes the second one fail at commit, and its
state change is retried whole.

``send_pending`` is the tick that empties it, in three steps so no transaction is held while
talking to a mail server: claim due rows under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
on SQLite every transaction already holds the write lock from ``BEGIN IMMEDIATE``), send each,
then mark each sent or failed in its own short transaction. Delivery is at least once: a crash
between sending and marking sends that email again once the lease expires. That is the accepted
trade for email (a duplicate notice beats a lost one), and the duplicate carries the same
``Message-ID``. Attached documents (a receipt's invoice, a refund's credit note) are stored as
references and rendered as PDFs when the email is sent (``Attacher``), never inside the state
change's transaction; a document renders from its own recorded template version, so a resend
attaches the same document. A failed send is retried with growing delays (``RETRY_DELAYS``) and
never dropped; ``billing outbox list`` shows it as failing, with the last error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from billing.clock import Clock
from billing.domain.timeutil import to_utc
from billing.errors import InvalidInput
from billing.mail.message import Attachment, build_message, mailbox
from billing.mail.transport import SendFailed, Transport
from billing.store.engine import Store
from billing.store.models import OutboxMessage
from billing.store.uow import UnitOfWork
from billing.templates import DEFAULT_LOCALE, Sender, render_email

if TYPE_CHECKING:  # rendering documents is imported only when an email has one
    from billing.documents.merchant import Merchant

log = logging.getLogger(__name__)

RETRY_DELAYS = (
    timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=6),
)
LEASE = timedelta(minutes=10)
MAX_ERROR = 500
SUBJECT_MAX = 200
ADDRESS_MAX = 254

Status = Literal["pending", "sent", "all"]
ATTACHABLE = ("invoice", "credit_note")

Attacher = Callable[[OutboxMessage], list[Attachment]]
"""Renders the documents a row references (``row.attachments``) as files to attach."""


@dataclass(frozen=True)
class OutboxSummary:
    """One pass: ``remaining`` counts rows still due after it (over the limit, or leased)."""

    sent: int
    failed: int
    remaining: int


@dataclass(frozen=True)
class OutboxView:
    id: int
    created_at: datetime
    template: str
    to: str
    subject: str
    status: Literal["pending", "failing", "sent"]
    transport: str | None
    attempts: int
    last_error: str | None
    send_after: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, row: OutboxMessage) -> OutboxView:
        status: Literal["pending", "failing", "sent"] = (
            "sent" if row.sent_at is not None else "failing" if row.attempts else "pending")
        return cls(row.id, row.created_at, row.template, row.to_address, row.subject, status,
                   row.transport, row.attempts, row.last_error, row.send_after, row.sent_at)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failure: 1m, 5m, 30m, 2h, then every 6h."""
    return RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1]


def enqueue_email(
    session: Session,
    *,
    at: datetime,
    template: str,
    to: str,
    context: Mapping[str, object],
    dedupe_key: str,
    customer_id: int | None = None,
    invoice_id: int | None = None,
    locale: str = DEFAULT_LOCALE,
    send_after: datetime | None = None,
    sender: Sender | None = None,
    templates_dir: Path | None = None,
    attachments: Sequence[Mapping[str, str]] = (),
) -> OutboxMessage | None:
    """Render ``template`` (text and HTML) and add it to ``session`` (uncommitted); ``None`` if
    already queued. ``attachments`` name documents to attach at send time:
    ``[{"kind": "invoice", "number": "INV-0000042"}]``."""
    if _already_queued(session, dedupe_key):
        return None
    for ref in attachments:
        if ref.get("kind") not in ATTACHABLE or not ref.get("number"):
            raise InvalidInput(f"cannot attach {dict(ref)!r}: kinds are {', '.join(ATTACHABLE)}")
    address = str(mailbox(to))
    if len(address) > ADDRESS_MAX:
        raise InvalidInput(f"email address longer than {ADDRESS_MAX} characters: {to!r}")
    rendered = render_email(template, context, locale=locale, sender=sender,
                            templates_dir=templates_dir)
    at = to_utc(at)
    row = OutboxMessage(
        dedupe_key=dedupe_key, template=template, to_address=address,
        template_version=rendered.template_version, locale=locale,
        subject=rendered.subject[:SUBJECT_MAX], body_text=rendered.text, body_html=rendered.html,
        attachments=[dict(ref) for ref in attachments] or None,
        customer_id=customer_id, invoice_id=invoice_id, created_at=at,
        send_after=to_utc(send_after) if send_after is not None else at, attempts=0,
    )
    session.add(row)
    return row


DUNNING_TEMPLATES = ("payment_failed", "reminder", "final_notice")
"""Emails that ask a customer to pay an invoice: wrong once it is paid or no longer collected."""


def drop_unsent_dunning(session: Session, invoice_ids: Sequence[int]) -> int:
    """Take back dunning emails not yet sent for these invoices, in the transaction that paid
    them or stopped collecting them: a customer whose subscription was canceled (or whose
    invoice was just paid) must not be told a payment failed and will be retried. An email
    already claimed by a sender may still go out."""
    if not invoice_ids:
        return 0
    gone = session.execute(delete(OutboxMessage).where(
        OutboxMessage.invoice_id.in_(list(invoice_ids)), OutboxMessage.sent_at.is_(None),
        OutboxMessage.template.in_(DUNNING_TEMPLATES)).returning(OutboxMessage.id)).all()
    return len(gone)


def _already_queued(session: Session, dedupe_key: str) -> bool:
    pending = any(isinstance(obj, OutboxMessage) and obj.dedupe_key == dedupe_key
                  for obj in session.new)
    if pending:
        return True
    query = select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)
    with session.no_autoflush:  # rows added here are in ``session.new``; flushing the caller's
        return session.scalar(query) is not None  # half-made change would unbatch its writes


def _due(at: datetime) -> ColumnElement[bool]:
    return (OutboxMessage.sent_at.is_(None)) & (OutboxMessage.send_after <= at)


def claim_due(store: Store, *, at: datetime, worker: str, limit: int) -> list[OutboxMessage]:
    """Lease up to ``limit`` due, unleased rows to ``worker``, oldest due first, and commit."""
    query = (
        select(OutboxMessage)
        .where(_due(at), or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= at))
        .order_by(OutboxMessage.send_after, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the write lock already
    )
    with UnitOfWork(store) as uow:
        rows = list(uow.session.scalars(query))
        for row in rows:
            row.lease_owner = worker[:64]
            row.lease_until = at + LEASE
        uow.commit()
    return rows


def _finish(store: Store, row_id: int, **values: object) -> None:
    """Record one outcome; a row someone already marked sent keeps its first record."""
    stmt = (update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.sent_at.is_(None))
            .values(lease_owner=None, lease_until=None, **values))
    with UnitOfWork(store) as uow:
        uow.session.execute(stmt)
        uow.commit()


def document_attacher(store: Store, merchant: Merchant | None = None) -> Attacher:
    """The ``Attacher`` that renders invoices and credit notes as PDFs, in the email's locale,
    as ``billing invoices render`` would. ``merchant`` (a ``billing.documents.Merchant``) is
    the identity printed on them; without it, it is read from settings once, on the first row
    that needs it (the daemon's outbox tick)."""
    from billing.documents import merchant_from_settings, render_credit_note, render_invoice
    from billing.services.documents import credit_note_document, invoice_document
    from billing.settings import load_settings

    found: list[Merchant] = [merchant] if merchant is not None else []

    def attach(row: OutboxMessage) -> list[Attachment]:
        if not row.attachments:
            return []
        if not found:
            found.append(merchant_from_settings(load_settings()))
        files = []
        for ref in row.attachments:
            number = str(ref["number"])
            with UnitOfWork(store) as uow:
                if ref["kind"] == "invoice":
                    pdf = render_invoice(invoice_document(uow, number), found[0], "pdf",
                                         row.locale)
                else:
                    pdf = render_credit_note(credit_note_document(uow, number), found[0],
                                             "pdf", row.locale)
            files.append(Attachment(f"{number}.pdf", pdf))
        return files

    return attach


def _deliver(row: OutboxMessage, transport: Transport, *, sender: str, at: datetime,
             attach: Attacher) -> str:
    msg = build_message(sender=sender, to=row.to_address, subject=row.subject,
                        text=row.body_text, dedupe_key=row.dedupe_key, at=at,
                        template=row.template, outbox_id=row.id, html=row.body_html,
                        attachments=attach(row))
    return transport.send(msg)


def _reason(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, SendFailed) else f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR]


def send_rows(
    store: Store, transport: Transport, rows: Sequence[OutboxMessage], *, sender: str,
    at: datetime, attach: Attacher | None = None,
) -> tuple[int, int]:
    """Send claimed rows one by one, recording each outcome; returns (sent, failed). A document
    that cannot be rendered fails its email like a refused send: retried, never sent without."""
    sent = failed = 0
    attach = attach or document_attacher(store)
    for row in rows:
        try:
            used = _deliver(row, transport, sender=sender, at=at, attach=attach)
        except Exception as exc:  # one bad message must not hold up the rest of the queue
            reason = _reason(exc)
            log.warning("outbox message %s not sent: %s", row.id, reason)
            _finish(store, row.id, attempts=OutboxMessage.attempts + 1, last_error=reason,
                    send_after=at + retry_delay(row.attempts + 1))
            failed += 1
        else:
            _finish(store, row.id, sent_at=at, transport=used)
            sent += 1
    return sent, failed


def send_pending(
    store: Store, transport: Transport, clock: Clock, *, worker: str, sender: str,
    limit: int = 100, attach: Attacher | None = None,
) -> OutboxSummary:
    """One outbox tick: claim due messages, send them outside any transaction, record outcomes."""
    at = to_utc(clock.now())
    rows = claim_due(store, at=at, worker=worker, limit=limit)
    try:
        sent, failed = send_rows(store, transport, rows, sender=sender, at=at, attach=attach)
    finally:
        transport.close()
    with UnitOfWork(store) as uow:
        remaining = uow.session.scalar(select(func.count(OutboxMessage.id)).where(_due(at)))
    return OutboxSummary(sent, failed, int(remaining or 0))


def list_messages(
    session: Session, *, status: Status = "all", limit: int = 100
) -> list[OutboxView]:
    """Newest first; ``pending`` includes failing messages still being retried."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status == "pending":
        query = query.where(OutboxMessage.sent_at.is_(None))
    elif status == "sent":
        query = query.where(OutboxMessage.sent_at.is_not(None))
    return [OutboxView.of(row) for row in session.scalars(query)]
