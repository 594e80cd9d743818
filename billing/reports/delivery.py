"""Queueing a report to the merchant through the outbox, at most once per dedupe key.

The outbox (``billing.services.outbox``) renders customer templates; a report is not one, so the
row is written here with the same columns and the same rules: a unique ``dedupe_key`` decides,
and the row is added in its own short transaction after the report is built (on SQLite a
transaction holds the write lock, so the report's reads stay outside it). If another process
queued the same key meanwhile, the insert loses on the unique index and this returns ``None``.

What the email carries: ``body_text`` is a plain-text summary of the key figures, which is what
the outbox sends today; ``body_html`` holds the whole HTML report, stored on the row for when the
mail layer learns to send an HTML part. The CSV cannot be attached yet (the outbox has no
attachments), so the text says how to produce it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from billing.domain.timeutil import to_utc
from billing.errors import InvalidInput
from billing.mail.message import mailbox
from billing.reports.figures import Report, Tally
from billing.reports.render import TEMPLATE_VERSION, environment, html_text, money, to_json
from billing.services.outbox import ADDRESS_MAX, SUBJECT_MAX
from billing.store.engine import Store
from billing.store.models import OutboxMessage
from billing.store.uow import UnitOfWork

TEMPLATE = "report"
"""The outbox row's ``template``: how ``billing outbox list`` names report emails."""


def is_queued(store: Store, dedupe_key: str) -> bool:
    with UnitOfWork(store) as uow:
        return uow.session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.dedupe_key == dedupe_key)) is not None


def email_text(report: Report, *, title: str, merchant: str) -> str:
    """The plain-text part: the key figures of every currency."""
    owed = {c: Tally(sum(t.count for t in report.aging.get(c, {}).values()),
                     sum(t.amount for t in report.aging.get(c, {}).values()))
            for c in report.currencies}
    return environment().get_template("report_email.txt.j2").render(
        title=title, merchant=merchant, data=to_json(report), owed=owed, money=money)


def enqueue_report(store: Store, report: Report, *, to: str, merchant: str, title: str,
                   dedupe_key: str, at: datetime) -> int | None:
    """Queue ``report`` to ``to``; the outbox row's id, or ``None`` if the key was queued."""
    address = str(mailbox(to))
    if len(address) > ADDRESS_MAX:
        raise InvalidInput(f"email address longer than {ADDRESS_MAX} characters: {to!r}")
    at = to_utc(at)
    row = OutboxMessage(
        dedupe_key=dedupe_key, template=TEMPLATE, template_version=TEMPLATE_VERSION,
        locale="en", to_address=address, subject=f"{merchant}: {title}"[:SUBJECT_MAX],
        body_text=email_text(report, title=title, merchant=merchant),
        body_html=html_text(report, merchant=merchant), created_at=at, send_after=at,
        attempts=0)
    with UnitOfWork(store) as uow:
        if uow.session.scalar(select(OutboxMessage.id).where(
                OutboxMessage.dedupe_key == dedupe_key)) is not None:
            return None
        uow.session.add(row)
        try:
            uow.commit()
        except IntegrityError:
            if is_queued(store, dedupe_key):  # another process won the race for this key
                return None
            raise
        return row.id
