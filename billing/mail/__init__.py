"""Delivering emails: building the message, and the transports that carry it (SMTP or files).

The outbox (``billing.services.outbox``) decides *what* to send and *when*; this package only
knows *how*. ``transport_from_settings`` is the one place that picks SMTP or ``.eml`` files.
"""

from __future__ import annotations

from billing.mail.files import FileTransport
from billing.mail.memory import MemoryTransport
from billing.mail.message import Attachment, build_message, mailbox, message_id
from billing.mail.smtp import SmtpTarget, SmtpTransport, parse_smtp_url
from billing.mail.transport import MailError, SendFailed, Transport
from billing.settings import Settings

__all__ = [
    "Attachment",
    "FileTransport",
    "MailError",
    "MemoryTransport",
    "SendFailed",
    "SmtpTarget",
    "SmtpTransport",
    "Transport",
    "build_message",
    "mailbox",
    "message_id",
    "parse_smtp_url",
    "transport_from_settings",
]


def transport_from_settings(settings: Settings) -> Transport:
    """SMTP when ``BILLING_SMTP_URL`` is set, else ``.eml`` files in ``BILLING_OUTBOX_DIR``."""
    if settings.smtp_url is not None:
        return SmtpTransport(settings.smtp_url)
    return FileTransport(settings.outbox_dir)
