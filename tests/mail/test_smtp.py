"""SMTP delivery against a real server: login, STARTTLS, implicit TLS, and no leaked password."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from billing.errors import ConfigError
from billing.mail import SendFailed, SmtpTransport, build_message, parse_smtp_url

from .conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer, Tls

AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _message(n: int = 1) -> Any:
    return build_message(sender="Maple & Co <billing@maple.example.com>", to="ann@example.com",
                         subject=f"Receipt {n}", text="Thank you.\n", dedupe_key=f"k:{n}",
                         at=AT, template="payment_succeeded", outbox_id=n)


def test_login_over_loopback_and_several_messages_on_one_connection(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    server = start_smtp(auth=True)
    transport = SmtpTransport(SecretStr(server.url(user=f"{SMTP_USER}:{SMTP_PASSWORD}")))
    try:
        assert transport.send(_message(1)) == "smtp"
        assert transport.send(_message(2)) == "smtp"
    finally:
        transport.close()
    assert server.inbox.logins == [SMTP_USER]
    assert [m["Subject"] for m in server.inbox.messages] == ["Receipt 1", "Receipt 2"]
    assert server.inbox.messages[0]["From"] == "Maple & Co <billing@maple.example.com>"


def test_a_rejected_login_is_reported_without_the_password(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    server = start_smtp(auth=True)
    wrong = f"{SMTP_PASSWORD}-wrong"
    transport = SmtpTransport(SecretStr(server.url(user=f"{SMTP_USER}:{wrong}")))
    with pytest.raises(SendFailed) as info:
        transport.send(_message())
    assert "SMTP 535" in str(info.value)
    assert SMTP_PASSWORD not in str(info.value) and SMTP_PASSWORD not in repr(transport)
    assert server.inbox.messages == []


def test_starttls_is_used_when_offered(
    start_smtp: Callable[..., SmtpServer], tls: Tls
) -> None:
    server = start_smtp(auth=True, auth_require_tls=True, auth_required=True,
                        tls_context=tls.server, require_starttls=True)
    url = server.url(user=f"{SMTP_USER}:{SMTP_PASSWORD}")
    transport = SmtpTransport(SecretStr(url), ssl_context=tls.client)
    try:
        transport.send(_message())
    finally:
        transport.close()
    assert server.inbox.logins == [SMTP_USER] and len(server.inbox.messages) == 1


def test_smtps_speaks_tls_from_the_first_byte(
    start_smtp: Callable[..., SmtpServer], tls: Tls
) -> None:
    server = start_smtp(ssl_context=tls.server)
    transport = SmtpTransport(SecretStr(server.url(scheme="smtps")), ssl_context=tls.client)
    try:
        transport.send(_message())
    finally:
        transport.close()
    assert len(server.inbox.messages) == 1


def test_an_untrusted_certificate_is_a_send_failure(
    start_smtp: Callable[..., SmtpServer], tls: Tls
) -> None:
    server = start_smtp(ssl_context=tls.server)
    transport = SmtpTransport(SecretStr(server.url(scheme="smtps")), timeout=5)
    with pytest.raises(SendFailed, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        transport.send(_message())


def test_smtp_url_parsing() -> None:
    target = parse_smtp_url(SecretStr("smtps://me%40shop.example:p%40ss@mail.example.com"))
    assert (target.host, target.port, target.implicit_tls, target.username) == (
        "mail.example.com", 465, True, "me@shop.example")
    assert target.password is not None and target.password.get_secret_value() == "p@ss"
    plain = parse_smtp_url(SecretStr("smtp://relay.internal"))
    assert (plain.port, plain.implicit_tls, plain.username, plain.password) == (
        25, False, None, None)


@pytest.mark.parametrize("url", ["http://u:hunter2@mail.example.com", "smtp://u:hunter2@",
                                 "smtp://u:hunter2@mail.example.com:notaport", "hunter2"])
def test_a_bad_smtp_url_is_a_config_error_that_hides_the_password(url: str) -> None:
    with pytest.raises(ConfigError, match="BILLING_SMTP_URL") as info:
        parse_smtp_url(SecretStr(url))
    assert "hunter2" not in str(info.value)

