"""The port every mail transport implements, and the one error it may raise.

    BillingError
    └── MailError            a mail transport could not deliver a message
        └── SendFailed       this message was not accepted; safe to retry later

Implementations translate their own errors (``smtplib``, ``OSError``) into ``SendFailed`` with a
message that is safe to store and show: no passwords, no message bodies.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol

from billing.errors import BillingError


class MailError(BillingError):
    """Root of mail delivery failures."""


class SendFailed(MailError):
    """The message was not handed over; the outbox keeps it and tries again later."""


class Transport(Protocol):
    """Hands finished messages to the outside world.

    ``send`` returns the transport's short name (``smtp``, ``file``), recorded on the outbox row.
    ``close`` ends a batch: a transport may keep one connection open between ``send`` calls and
    must release it here; the next ``send`` opens a new one.
    """

    def send(self, msg: EmailMessage) -> str: ...

    def close(self) -> None: ...
