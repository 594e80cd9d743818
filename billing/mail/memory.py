"""An in-memory ``Transport`` for tests and dry runs: keeps what it was given, can be told to fail.

Engine tests assert on ``transport.sent`` (the resulting state) instead of mocking ``smtplib``.
"""

from __future__ import annotations

from email.message import EmailMessage

from billing.mail.transport import SendFailed


class MemoryTransport:
    """Records every message; the next ``fail_next`` sends raise ``SendFailed`` instead."""

    name = "memory"

    def __init__(self, *, fail_next: int = 0) -> None:
        self.sent: list[EmailMessage] = []
        self.fail_next = fail_next
        self.batches_closed = 0

    def send(self, msg: EmailMessage) -> str:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise SendFailed("memory transport told to fail")
        self.sent.append(msg)
        return self.name

    def close(self) -> None:
        self.batches_closed += 1
