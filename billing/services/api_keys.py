"""API keys for the merchant JSON API: made, listed, revoked, and checked on every request.

A key is ``bk_live_`` plus 32 random bytes (URL-safe base64). It is shown once, when made; the
database keeps its SHA-256 only, so a stolen backup cannot call the API. A request's key is
hashed and compared with ``hmac.compare_digest`` against the stored hash found by that hash:
the comparison takes the same time whether one character or all of them are right.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from billing.errors import Conflict, InvalidInput, NotFound
from billing.store.engine import Store
from billing.store.models import ApiKey
from billing.store.uow import UnitOfWork

PREFIX = "bk_live_"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SHOWN_PREFIX = 12
"""How much of a key ``api-keys list`` shows: ``bk_live_`` and four characters of the secret,
enough to tell keys apart, far too little to guess the rest."""


@dataclass(frozen=True)
class ApiKeyView:
    name: str
    prefix: str
    created_at: str
    revoked_at: str | None
    last_used_at: str | None

    @classmethod
    def of(cls, row: ApiKey) -> ApiKeyView:
        return cls(row.name, row.prefix, row.created_at.isoformat(),
                   row.revoked_at.isoformat() if row.revoked_at else None,
                   row.last_used_at.isoformat() if row.last_used_at else None)


@dataclass(frozen=True)
class Caller:
    """Who made an API request: the key's row id (idempotency keys are per key) and name."""

    key_id: int
    name: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_api_key(store: Store, name: str, at: datetime) -> tuple[ApiKeyView, str]:
    """Make a key named ``name``; returns its view and the secret, which is never stored."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(f"API key name must be 1 to 64 letters, digits, '_', '.' or '-', "
                           f"starting with a letter or digit (got {name!r})")
    secret = PREFIX + secrets.token_urlsafe(32)
    with UnitOfWork(store) as uow:
        if uow.session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
            raise Conflict(f"an API key named {name!r} already exists")
        row = ApiKey(name=name, prefix=secret[:SHOWN_PREFIX], key_hash=hash_key(secret),
                     created_at=at)
        uow.session.add(row)
        uow.commit()
        return ApiKeyView.of(row), secret


def list_api_keys(store: Store) -> list[ApiKeyView]:
    with UnitOfWork(store) as uow:
        return [ApiKeyView.of(r) for r in uow.session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_api_key(store: Store, name: str, at: datetime) -> ApiKeyView:
    """Refuse the key from now on; revoking twice keeps the first time."""
    with UnitOfWork(store) as uow:
        row = uow.session.scalar(select(ApiKey).where(ApiKey.name == name))
        if row is None:
            raise NotFound(f"no API key named {name!r}")
        row.revoked_at = row.revoked_at or at
        uow.commit()
        return ApiKeyView.of(row)


def authenticate(store: Store, secret: str, at: datetime) -> Caller | None:
    """The caller a presented key belongs to, or ``None`` (unknown, malformed or revoked)."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    wanted = hash_key(secret)
    with UnitOfWork(store) as uow:
        row = uow.session.scalar(select(ApiKey).where(ApiKey.key_hash == wanted))
        if row is None or not hmac.compare_digest(row.key_hash, wanted):
            return None
        if row.revoked_at is not None:
            return None
        # Only once a minute: a busy API must not write a row per request.
        if row.last_used_at is None or (at - row.last_used_at).total_seconds() >= 60:
            row.last_used_at = at
            uow.commit()
        return Caller(row.id, row.name)
