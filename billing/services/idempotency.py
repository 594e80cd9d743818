"""Idempotency keys: the first response to a POST is stored and replayed for the same key.

    claim = begin(store, caller_key_id, key, fingerprint, at)
    if isinstance(claim, Replay): answer claim.status_code, claim.body
    else: do the work once, then finish(store, claim, status_code, body)
              (or release(store, claim) if it failed in a way worth retrying)

``begin`` inserts the row ``in_progress`` in its own transaction, so the unique constraint on
(api key, Idempotency-Key) decides which of two daemons does the work; the other sees the row
and gets ``InProgress`` (409) until the first finishes, then the replay. The same key with
another request (a different fingerprint) is ``KeyReused`` (422). Keys live 24 hours by the
injected clock; expired ones are purged when a key is inserted (and by ``purge_expired``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from billing.errors import Conflict, InvalidInput
from billing.store.engine import Store
from billing.store.models import IdempotencyKey
from billing.store.uow import UnitOfWork

TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class InProgress(Conflict):
    """The same key's first request is still being worked on."""


class KeyReused(InvalidInput):
    """The key was already used with another request."""


@dataclass(frozen=True)
class Claim:
    """This request owns the key and must do the work, then ``finish`` or ``release``."""

    row_id: int


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: str


def fingerprint(method: str, path: str, body: Any) -> str:
    """SHA-256 of the method, path and canonical JSON body (key order does not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII "
                           "characters")
    return key


def begin(store: Store, api_key_id: int, key: str, print_: str, at: datetime) -> Claim | Replay:
    """Claim ``key`` for this request, or say what became of the request that claimed it."""
    check_key(key)
    for _ in range(3):  # an expired row is deleted, then the insert is tried again
        with UnitOfWork(store) as uow:
            uow.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= at))
            row = IdempotencyKey(api_key_id=api_key_id, key=key, fingerprint=print_,
                                 state="in_progress", created_at=at, expires_at=at + TTL)
            uow.session.add(row)
            try:
                uow.commit()
                return Claim(row.id)
            except IntegrityError:
                uow.rollback()
        found = _existing(store, api_key_id, key, print_, at)
        if found is not None:
            return found
    raise InProgress("this Idempotency-Key is being used by another request; retry later")


def _existing(store: Store, api_key_id: int, key: str, print_: str,
              at: datetime) -> Replay | None:
    with UnitOfWork(store) as uow:
        row = uow.session.scalar(select(IdempotencyKey).where(
            IdempotencyKey.api_key_id == api_key_id, IdempotencyKey.key == key))
        if row is None:
            return None
        if row.expires_at <= at:
            uow.session.delete(row)
            uow.commit()
            return None
        if row.fingerprint != print_:
            raise KeyReused("this Idempotency-Key was already used with another request "
                            "(method, path or body differ); use a new key")
        if row.state != "done" or row.status_code is None or row.body is None:
            raise InProgress("a request with this Idempotency-Key is still in progress; "
                             "retry later")
        return Replay(row.status_code, row.body)


def finish(store: Store, claim: Claim, status_code: int, body: str) -> None:
    """Store the response the request gave, for every replay within the key's lifetime."""
    with UnitOfWork(store) as uow:
        row = uow.session.get(IdempotencyKey, claim.row_id)
        if row is not None:
            row.state, row.status_code, row.body = "done", status_code, body
            uow.commit()


def release(store: Store, claim: Claim) -> None:
    """Forget the claim of a request that failed before it changed anything that matters (an
    outage, not a refusal), so the client can retry with the same key."""
    with UnitOfWork(store) as uow:
        uow.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim.row_id))
        uow.commit()


def purge_expired(store: Store, at: datetime) -> int:
    """Delete every key past its 24 hours; returns how many."""
    with UnitOfWork(store) as uow:
        result = uow.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= at))
        uow.commit()
        return int(getattr(result, "rowcount", 0) or 0)
