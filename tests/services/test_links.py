"""Signed links: each purpose's tokens open only that purpose, and only until their last day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from billing.services.links import (
    customer_of_token,
    invoice_of_pay_token,
    pay_now_token,
    pay_now_url,
    update_card_token,
)
from billing.services.ports import EngineConfig

AT = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def _config(secret: str = "s3cret") -> EngineConfig:
    return EngineConfig(public_url="https://shop.example/", link_secret=SecretStr(secret))


def test_a_pay_now_token_names_its_invoice_through_its_last_day_and_not_after() -> None:
    config = _config()
    token = pay_now_token(config, 42, AT)
    assert invoice_of_pay_token(config, token, AT) == 42
    last_day = AT + config.pay_now_link_ttl
    assert invoice_of_pay_token(config, token, last_day.replace(hour=23, minute=59)) == 42
    assert invoice_of_pay_token(config, token, last_day + timedelta(days=1)) is None


def test_a_token_made_for_one_purpose_opens_nothing_of_the_other() -> None:
    config = _config()
    assert customer_of_token(config, pay_now_token(config, 7, AT), AT) is None
    assert invoice_of_pay_token(config, update_card_token(config, 7, AT), AT) is None


def test_an_altered_or_foreign_pay_now_token_is_refused() -> None:
    config = _config()
    token = pay_now_token(config, 42, AT)
    head, last_day, mac = token.split(".")
    assert invoice_of_pay_token(config, f"43.{last_day}.{mac}", AT) is None
    assert invoice_of_pay_token(config, f"{head}.20991231.{mac}", AT) is None
    assert invoice_of_pay_token(_config("other"), token, AT) is None
    assert invoice_of_pay_token(config, "42", AT) is None
    assert invoice_of_pay_token(config, "４２." + last_day + "." + mac, AT) is None


def test_the_pay_now_url_is_under_the_public_url() -> None:
    url = pay_now_url(_config(), 42, AT)
    assert url.startswith("https://shop.example/billing/pay/42.")
