"""Sending through an SMTP server named by ``BILLING_SMTP_URL``.

``smtp://user:password@host:587`` connects in clear and upgrades with STARTTLS whenever the server
offers it; ``smtps://...:465`` speaks TLS from the first byte. Credentials are only sent over an
encrypted connection, or to a relay on this machine (``localhost``, ``127.0.0.1``, ``::1``).
One connection is opened on the first ``send`` of a batch and kept until ``close``.

The password lives in a ``SecretStr`` and goes nowhere but ``SMTP.login``: not into logs, not
into ``repr``, not into error messages (which are scrubbed once more before leaving this module,
because they end up in the outbox table and on screen).
"""

from __future__ import annotations

import ipaddress
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from billing.errors import ConfigError
from billing.mail.transport import SendFailed
from billing.settings import mask_url

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
MAX_ERROR = 500


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to connect; ``password`` stays a ``SecretStr`` until login."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: SecretStr | None

    def __str__(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"


def parse_smtp_url(url: SecretStr) -> SmtpTarget:
    """Read ``smtp[s]://[user[:password]@]host[:port]``; mistakes are a ``ConfigError``."""
    raw = url.get_secret_value().strip()
    shown = _masked(raw)
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ConfigError(f"BILLING_SMTP_URL {shown} is not a valid URL") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(
            f"BILLING_SMTP_URL {shown}: expected smtp://[user:password@]host[:port] or smtps://")
    username = unquote(parts.username) if parts.username else None
    password = SecretStr(unquote(parts.password)) if parts.password is not None else None
    return SmtpTarget(parts.hostname, port or DEFAULT_PORTS[parts.scheme],
                      parts.scheme == "smtps", username, password)


def _masked(raw: str) -> str:
    """The URL as an error may show it: password hidden, or nothing if it cannot be parsed."""
    try:
        return mask_url(raw) if "://" in raw else "(hidden)"
    except ValueError:
        return "(hidden)"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpTransport:
    """A ``Transport`` that hands messages to an SMTP server."""

    name = "smtp"

    def __init__(
        self, url: SecretStr, *, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.target = parse_smtp_url(url)
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._conn: smtplib.SMTP | None = None

    def __repr__(self) -> str:
        return f"SmtpTransport({self.target})"

    def send(self, msg: EmailMessage) -> str:
        try:
            if self._conn is None:
                self._conn = self._connect()
            self._conn.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise SendFailed(self._describe(exc)) from exc
        return self.name

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        log.debug("connecting to %s", t)
        conn: smtplib.SMTP
        if t.implicit_tls:
            conn = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=self._context())
        else:
            conn = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
        try:
            self._handshake(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _handshake(self, conn: smtplib.SMTP) -> None:
        t = self.target
        conn.ehlo()
        encrypted = t.implicit_tls
        if not encrypted and conn.has_extn("starttls"):
            conn.starttls(context=self._context())
            conn.ehlo()
            encrypted = True
        if t.username is None:
            return
        if not encrypted and not _is_loopback(t.host):
            raise SendFailed(f"{t} offers no TLS; refusing to send the SMTP password in clear")
        password = t.password.get_secret_value() if t.password is not None else ""
        conn.login(t.username, password)

    def _describe(self, exc: BaseException) -> str:
        """A storable one-line reason, with the password scrubbed even if a server echoed it."""
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            text = "recipient refused: " + "; ".join(
                f"{code} {_decode(reply)}" for code, reply in exc.recipients.values())
        elif isinstance(exc, smtplib.SMTPResponseException):
            text = f"SMTP {exc.smtp_code}: {_decode(exc.smtp_error)}"
        elif isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException):
            text = f"cannot reach {self.target}: {exc.strerror or type(exc).__name__}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        text = f"{self.target}: {text}" if str(self.target) not in text else text
        secret = self.target.password.get_secret_value() if self.target.password else ""
        if secret:
            text = text.replace(secret, "***")
        return text[:MAX_ERROR]


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
