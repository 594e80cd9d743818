"""Settings never print a secret, whatever shape the URL holding it has."""

from __future__ import annotations

import pytest

from billing.settings import mask_url


@pytest.mark.parametrize("url,shown", [
    ("smtp://mailer:hunter2@mail.example.com:587", "smtp://mailer:***@mail.example.com:587"),
    ("smtp://u:hunter2@host:abc", "smtp://u:***@host:abc"),
    ("smtp://u:hunter2@[::1]:25", "smtp://u:***@[::1]:25"),
    ("postgresql+psycopg://app:hunter2@db/billing", "postgresql+psycopg://app:***@db/billing"),
    ("smtp://:hunter2@host", "smtp://***@host"),
    ("sqlite:///billing.db", "sqlite:///billing.db"),
])
def test_passwords_in_urls_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "hunter2" not in mask_url(url)
