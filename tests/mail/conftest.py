"""Fixtures for email tests: a real SMTP server on a free port, TLS material, queued rows, the CLI.

The SMTP server is aiosmtpd in a thread, bound to port 0 so parallel test runs never collide;
its handler keeps every message it accepted, parsed, for assertions on what a customer receives.
"""

from __future__ import annotations

import asyncio
import email
import json
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from billing.cli.app import main
from billing.documents.formatting import Formatter
from billing.services.outbox import enqueue_email
from billing.store.engine import Store
from billing.store.uow import UnitOfWork

SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret-Pa55"  # the tests assert it never appears in stored errors


def context_for(template: str, locale: str = "en") -> dict[str, object]:
    """A complete context for each template, as an engine caller would pass it: amounts and
    dates formatted by Babel for ``locale``, names with characters HTML must escape."""
    f = Formatter(locale, "CAD", "America/Toronto")
    jan = datetime(2026, 1, 15, 17, tzinfo=UTC)
    common: dict[str, object] = {"merchant_name": "Maple & Co", "customer_name": "Ann O'Neil"}
    invoice = {"amount": f.money(2900), "invoice_number": "INV-2026-0042",
               "update_card_url": "https://pay.example.com/cards/update?c=7&t=x",
               "pay_url": "https://pay.example.com/billing/pay/42.20260214.abc"}
    card = "6250 94** **** 1234"
    per_template: dict[str, dict[str, object]] = {
        "payment_failed": {**invoice, "reason": "Insufficient funds",
                           "next_retry": f.day(jan + timedelta(days=3))},
        "reminder": {**invoice, "due_date": f.day(jan)},
        "final_notice": {**invoice, "final_action": "cancel",
                         "final_date": f.day(jan + timedelta(days=14))},
        "card_expiring": {"card_number": card, "expiry": "02/2026",
                          "update_card_url": invoice["update_card_url"]},
        "payment_succeeded": {"amount": f.money(2900), "invoice_number": "INV-2026-0042",
                              "period": f"{f.day(jan)} - {f.day(jan + timedelta(days=30))}",
                              "paid_date": f.day(jan), "card_number": card},
        "subscription_canceled": {"plan_name": "Pro <Monthly>", "canceled_date": f.day(jan)},
        "trial_ending": {"plan_name": "Pro <Monthly>", "trial_end_date": f.day(jan),
                         "amount": f.money(2900), "card_number": card},
        "refund_issued": {"amount": f.money(1450), "invoice_number": "INV-2026-0042",
                          "credit_note_number": "CN-0000007", "refund_date": f.day(jan),
                          "card_number": card},
        "plan_changed": {"old_plan": "Basic", "new_plan": "Pro <Monthly>",
                         "effective_date": f.day(jan), "amount": f.money(4900),
                         "immediate": True},
    }
    return {**common, **per_template[template]}


def queue(store: Store, at: datetime, *specs: Mapping[str, Any]) -> list[int]:
    """Enqueue ``payment_failed`` emails in one committed unit of work; returns their ids."""
    ids = []
    with UnitOfWork(store) as uow:
        rows = [enqueue_email(uow.session, at=at, template=s.get("template", "payment_failed"),
                              to=s.get("to", "ann@example.com"),
                              context=context_for(s.get("template", "payment_failed")),
                              dedupe_key=s["key"]) for s in specs]
        uow.commit()
        ids = [r.id for r in rows if r is not None]
    return ids


@dataclass
class Inbox:
    """What the test SMTP server accepted."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=default_policy))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
              and auth_data.password == SMTP_PASSWORD.encode())
        if ok:
            self.logins.append(SMTP_USER)
        return AuthResult(success=ok, handled=False)


class EphemeralController(Controller):
    """Binds port 0 and learns the real port before aiosmtpd connects to check it started."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int

    def url(self, *, scheme: str = "smtp", user: str | None = None) -> str:
        auth = f"{user}@" if user else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., SmtpServer]]:
    """Start SMTP servers with given aiosmtpd options; all are stopped at teardown."""
    controllers: list[Controller] = []

    def _start(*, auth: bool = False, **options: Any) -> SmtpServer:
        """``auth=True`` checks logins against SMTP_USER/SMTP_PASSWORD and records them."""
        inbox = Inbox()
        if auth:
            options.setdefault("auth_require_tls", False)  # allowed in clear: loopback only
            options["authenticator"] = inbox.authenticate
        controller = EphemeralController(inbox, hostname="127.0.0.1", port=0, **options)
        controller.start()
        controllers.append(controller)
        return SmtpServer(inbox, controller.port)

    yield _start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_server(start_smtp: Callable[..., SmtpServer]) -> SmtpServer:
    """A plain SMTP server without TLS or authentication, like a local relay."""
    return start_smtp()


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A throwaway self-signed certificate for 127.0.0.1, trusted by the client context."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return Tls(server, client)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    db_url: str,
) -> Callable[..., Result]:
    """The CLI in-process against the test database, writing .eml files under ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    for name in ("BILLING_CONFIG", "BILLING_SMTP_URL", "BILLING_MERCHANT_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BILLING_DATABASE_URL", db_url)
    monkeypatch.setenv("BILLING_OUTBOX_DIR", str(tmp_path / "outbox"))

    def _run(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run
