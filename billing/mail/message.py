"""Building the email itself: headers and body, from what the outbox stored.

The ``Message-ID`` is derived from the outbox dedupe key, not random: if a crash makes the outbox
send a message twice, both copies carry the same id, so mail clients and support can tell it is a
duplicate of one email rather than two notices.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

from billing.domain.timeutil import to_utc
from billing.errors import InvalidInput

TEMPLATE_HEADER = "X-Billing-Template"
OUTBOX_ID_HEADER = "X-Billing-Outbox-Id"


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
) -> EmailMessage:
    """One plain-text email, dated ``at`` (the clock's time when it is sent)."""
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
    return msg
