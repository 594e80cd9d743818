"""Settings never print a secret, whatever shape the URL holding it has."""

from __future__ import annotations

import pytest

from billing.settings import mask_url


@pytest.mark.parametrize("url,shown", [
    ("smtp://mailer:hunter2@mail.example.com:587", "smtp://mailer:***@mail.example.com:587"),
    ("smtp://u:hunter2@host:abc", "smtp://u:***@host:abc"),
    ("smtp://u:hunter2@[::1]:25", "smtp://u:***@[::1]:25"),
    ("postgresql+psycopg://app:hunter2@db/billing", "postgresql+psycopg://app:***@db/billing"),
    ("smtp://:hunter2@host", "smtp://:***@host"),
    ("sqlite:///billing.db", "sqlite:///billing.db"),
])
def test_passwords_in_urls_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "hunter2" not in mask_url(url)


TRICKY = [
    # (url, the password text that must never be shown)
    ("postgresql+psycopg://u:pa/ss@h/db", "pa/ss"),
    ("postgresql://u:p#w@h/db", "p#w"),
    ("postgresql://u:p?w0rd@h:5432/db", "p?w0rd"),
    ("postgresql://u@h/db?password=secret&sslmode=require", "secret"),
    ("postgresql://u@h/db?sslmode=require&PassWord=s3cr3t", "s3cr3t"),
    ("postgresql://u@h/db?sslpassword=keypass", "keypass"),
    ("postgresql://u:p@ss/wd@h/db", "ss/wd"),
    ("postgresql://u:hunter2@h/db?application_name=a@b", "hunter2"),
    ("smtp://user:p/ss@host:25", "p/ss"),
    ("smtp://user:p#ss@host:nope", "p#ss"),
    ("smtps://user:p%2Fss@host", "p%2Fss"),
]


@pytest.mark.parametrize("url,password", TRICKY)
def test_tricky_passwords_never_show(url: str, password: str) -> None:
    shown = mask_url(url)
    assert password not in shown
    assert "***" in shown


@pytest.mark.parametrize("url", [
    "sqlite:///billing.db", "sqlite:////data/a@b.db", "http://127.0.0.1:8080/",
    "https://ccapi.iotpaycloud.com/v3/", "postgresql+psycopg://postgres@127.0.0.1:5432/test",
])
def test_urls_without_secrets_are_shown_as_written(url: str) -> None:
    assert mask_url(url) == url
