"""Building the email itself: headers and body, from what the outbox stored.

A customer email is ``multipart/alternative`` (plain text first, then HTML, so a client that
can show HTML picks it), wrapped in ``multipart/mixed`` when documents are attached.

The ``Message-ID`` is derived from the outbox dedupe key, not random: if a crash makes the outbox
send a message twice, both copies carry the same id, so mail clients and support can tell it is a
duplicate of one email rather than two notices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

from billing.domain.timeutil import to_utc
from billing.errors import InvalidInput

TEMPLATE_HEADER = "X-Billing-Template"
OUTBOX_ID_HEADER = "X-Billing-Outbox-Id"


@dataclass(frozen=True)
class Attachment:
    """One attached file: ``INV-0000042.pdf``, its bytes and MIME type."""

    filename: str
    content: bytes
    mime_type: str = "application/pdf"


def message_id(dedupe_key: str, sender: str) -> str:
    """``<hash-of-key@sender-domain>``: stable for one key; the key itself stays private."""
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "billing.invalid"
    return f"<{digest}@{domain}>"


def mailbox(text: str) -> Address:
    """``a@b.example`` or ``Shop <a@b.example>`` as one checked mailbox; anything else is refused.

    Checking here, before the header is set, keeps a stray newline or a second address in a
    customer's email field from turning into extra recipients.
    """
    if "\r" in text or "\n" in text:
        raise InvalidInput(f"not an email address: {text!r}")
    found = getaddresses([text.strip()])
    if len(found) != 1:
        raise InvalidInput(f"not one email address: {text!r}")
    name, spec = found[0]
    try:
        parsed = Address(display_name=name, addr_spec=spec)
    except (ValueError, IndexError, MessageError) as exc:
        raise InvalidInput(f"not an email address: {text!r}") from exc
    if not parsed.username or "." not in parsed.domain:
        raise InvalidInput(f"not an email address: {text!r}")
    return parsed


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    dedupe_key: str,
    at: datetime,
    template: str,
    outbox_id: int | None = None,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """One email, dated ``at`` (the clock's time when it is sent): text, with an HTML
    alternative when ``html`` is given, and ``attachments`` after both."""
    msg = EmailMessage()
    msg["From"] = mailbox(sender)
    msg["To"] = mailbox(to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(to_utc(at))
    msg["Message-ID"] = message_id(dedupe_key, sender)
    msg[TEMPLATE_HEADER] = template
    if outbox_id is not None:
        msg[OUTBOX_ID_HEADER] = str(outbox_id)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for item in attachments:
        main, _, sub = item.mime_type.partition("/")
        msg.add_attachment(item.content, maintype=main, subtype=sub, filename=item.filename)
    return msg
