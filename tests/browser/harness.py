"""The world a browser test drives: the engine on a real database, the IOTPay sandbox and the
notify receiver over HTTP, a real SMTP server catching the engine's emails, and helpers for the
pages a customer sees.

``Shop`` extends the engine tests' ``World`` (same clock, sandbox, ledger checks) with what a
browser needs: the receiver's public URL (where emails' links and the gateway's return point),
the merchant's JSON API on that same port with a fresh key (``shop.api``), an SMTP inbox, and
``fill_card_page`` for the sandbox's hosted card form (add-card and purchase pages alike).
Webhooks are caught by the ``receiver`` fixture of tests/webhooks.
"""

from __future__ import annotations

import asyncio
import email
import re
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from billing.daemon.ticks import PassReport, run_once
from billing.mail.smtp import SmtpTransport
from billing.sandbox import cards
from billing.store.models import Card
from billing.store.uow import UnitOfWork
from tests.api.conftest import Api
from tests.engine.harness import World

if TYPE_CHECKING:
    from playwright.sync_api import Page


@dataclass
class Inbox:
    """Every message the test SMTP server accepted, parsed, in arrival order."""

    messages: list[EmailMessage] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        with self._arrived:
            self.messages.append(message)  # type: ignore[arg-type]
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, subject_part: str, timeout: float = 5.0) -> EmailMessage:
        """The first message whose subject contains ``subject_part``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for message in self.messages:
                    if subject_part.lower() in str(message["Subject"]).lower():
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    subjects = [str(m["Subject"]) for m in self.messages]
                    raise AssertionError(f"no email about {subject_part!r}; got {subjects}")
                self._arrived.wait(left)


class SmtpServer(Controller):
    """aiosmtpd in a thread on a free loopback port (port 0, learnt once bound)."""

    def __init__(self, inbox: Inbox) -> None:
        super().__init__(inbox, hostname="127.0.0.1", port=0)

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    assert part is not None, "the email has no text body"
    return str(part.get_content())  # type: ignore[attr-defined]


def link_in(message: EmailMessage, path: str) -> str:
    """The one absolute URL in the email's text whose path starts with ``path``."""
    found = re.findall(r"https?://[^\s<>\"]+" + re.escape(path) + r"[^\s<>\"]*",
                       body_text(message))
    assert len(set(found)) == 1, f"expected one {path} link, found {found}"
    return str(found[0])


@dataclass
class Shop(World):
    """``World`` plus the browser's view: emails go over real SMTP into ``inbox``."""

    receiver_url: str = ""
    smtp: SmtpTransport | None = None
    inbox: Inbox = field(default_factory=Inbox)
    api: Api | None = None
    """The merchant's JSON API on the receiver's port, authenticated with a fresh key."""

    def tick(self) -> PassReport:
        """One engine pass sending its emails over SMTP, then its notifies applied."""
        report = run_once(self.deps, transport=self.smtp)
        self.sandbox.wait_for_notifies(5.0)
        self.settle(self.notifies_applied)
        return report

    def card_statuses(self, customer_ref: str | None = None) -> dict[str, str]:
        """``{gateway cardId: status}`` of every card (one customer's, if given)."""
        with UnitOfWork(self.deps.store) as uow:
            query = select(Card).order_by(Card.id)
            return {c.gateway_card_id: c.status for c in uow.session.scalars(query)
                    if customer_ref is None or c.customer.external_id == customer_ref}

    def ledger_charges(self) -> int:
        """Approved charges the sandbox holds for every order: the money actually taken."""
        ledger = self.sandbox.ledger()
        return sum(ledger.charges(a.mch_order_no) for a in self.attempts())

    def charged_cards(self) -> list[tuple[str | None, int]]:
        """``(gateway cardId, amount)`` of each approved charge in the sandbox ledger, in order:
        which card the money was actually taken from."""
        return [(o.card_id, o.amount) for o in self.sandbox.ledger().orders
                for _ in range(o.charged)]


def fill_card_page(page: Page, number: str = cards.APPROVE, *, expiry: str = "1230",
                   holder: str = "Ann Example", cvv: str = "123") -> None:
    """Type a card into the sandbox's hosted form as a customer would and submit it."""
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MMYY)").fill(expiry)
    page.get_by_label("Card holder").fill(holder)
    page.get_by_label("CVV").fill(cvv)
    page.get_by_role("button", name=re.compile("^(Save card|Pay)$")).click()
