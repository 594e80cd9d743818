"""The HTTP side of a webhook: one signed POST, its outcome as data, never an exception.

Foreign errors (DNS, refused connection, timeout, TLS) become an ``Outcome`` with the error's
type and message, so the caller records it on the delivery and goes on with the next one. The
``requests.Session`` is injected (tests pass one; the tick makes one per pass) and every request
has a (connect, read) timeout, so one slow endpoint costs at most that long. Redirects are not
followed: a 3xx is a failed delivery, since following it could POST the event somewhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests

from billing.webhooks.signing import HEADER, sign

USER_AGENT = "billing-webhooks/1"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
ERROR_MAX = 500


@dataclass(frozen=True)
class Outcome:
    """``status``: the HTTP status, if an answer came; ``error``: why it is not delivered."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.error is None


def headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {HEADER: sign(secret, timestamp, body), "Content-Type": "application/json",
            "User-Agent": USER_AGENT}


def post(http: requests.Session, url: str, secret: str, body: bytes, *, timestamp: int,
         timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)) -> Outcome:
    """POST ``body`` to ``url`` signed with ``secret`` at ``timestamp``; 2xx is delivered."""
    try:
        answer = http.post(url, data=body, headers=headers(secret, timestamp, body),
                           timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX])
    status = answer.status_code
    answer.close()
    if 200 <= status < 300:
        return Outcome(status, None)
    return Outcome(status, f"HTTP {status}")
