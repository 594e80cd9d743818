"""Signing webhook bodies as Stripe does, and the check a merchant's app runs on each one.

The header is ``Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
Signing the timestamp with the body lets a receiver refuse replays older than a tolerance;
comparing in constant time keeps the secret from leaking through timing. ``verify`` uses the
standard library only, so a merchant can copy it as it is (docs/webhooks.md prints the same
recipe).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Billing-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300
"""Seconds a signature stays acceptable: long enough for clock skew, short against replays."""


class SignatureError(ValueError):
    """The body was not signed with this secret, or the signature is too old."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Billing-Signature`` header value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: float,
           tolerance: int = DEFAULT_TOLERANCE) -> int:
    """Check a ``Billing-Signature`` header against the raw ``body`` as received; returns its
    timestamp. Raises ``SignatureError`` if the header is malformed, no ``v1`` signature matches
    (tampered body, wrong secret), or the timestamp is more than ``tolerance`` seconds from
    ``now`` (unix seconds, e.g. ``time.time()``)."""
    timestamp, candidates = _parse(header)
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("no signature matches the body")
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"timestamp {timestamp} is outside the tolerance of {tolerance} s")
    return timestamp


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("the header has no t=<timestamp> or no v1=<signature>")
    return timestamp, candidates
