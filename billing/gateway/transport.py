"""The edge where ``requests``/``urllib3`` failures become our two transit outcomes.

Only failures that provably happen before a byte of the request is written count as *not sent*:
a connect timeout, a refused connection, a failed DNS lookup, a closed or exhausted connection
pool, a URL that cannot be prepared. Everything else (read timeout, the server closing or resetting
the connection after reading the request, a broken chunked body, a TLS error whose phase we cannot
tell, any non-200 status, a body that is not a JSON object with ``retCode``) is *unknown*, because
guessing "not sent" wrongly is how a customer gets charged twice, while guessing "unknown" wrongly
only costs one ``cc_query``.

requests quirks this relies on: ``ConnectTimeout`` subclasses ``ConnectionError``; a refused
connection or DNS failure arrives as ``ConnectionError(MaxRetryError(reason=NewConnectionError))``
(``NameResolutionError`` subclasses ``NewConnectionError``); a server that closes the socket after
reading the request arrives as ``ConnectionError(ProtocolError(RemoteDisconnected))``.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    EmptyPoolError,
    MaxRetryError,
    NewConnectionError,
)

from billing.gateway.errors import GatewayCallError, GatewayNotSent, GatewayOutcomeUnknown

__all__ = ["TransportFailure", "classify_failure", "decode_body", "never_sent"]

TransportFailure = (requests.RequestException, ClosedPoolError, EmptyPoolError)

_NOT_SENT_REASONS = (NewConnectionError, ConnectTimeoutError, ClosedPoolError, EmptyPoolError)
_NOT_PREPARED = (
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidHeader,
)


def _reason(exc: BaseException) -> BaseException | None:
    """The urllib3 error underneath a requests exception, unwrapping ``MaxRetryError``."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
    if isinstance(inner, MaxRetryError):
        return inner.reason
    return inner


def _describe(exc: BaseException) -> str:
    """``ConnectionError(ProtocolError(RemoteDisconnected))``: the chain of exception *types*
    (their messages could quote a URL or body, types cannot)."""
    names: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(names) < 4:
        names.append(type(current).__name__)
        inner: BaseException | None = None
        if isinstance(current, MaxRetryError):
            inner = current.reason
        current = inner or next((a for a in current.args if isinstance(a, BaseException)), None)
    return "(".join(names) + ")" * (len(names) - 1)


def never_sent(exc: BaseException) -> bool:
    """True only when the failure provably happened before the request was written."""
    if isinstance(exc, requests.ConnectTimeout | ClosedPoolError | EmptyPoolError):
        return True
    if isinstance(exc, _NOT_PREPARED):
        return True
    if isinstance(exc, requests.exceptions.SSLError):
        return False  # a TLS failure may come after the request was written
    if isinstance(exc, requests.ConnectionError):
        return isinstance(_reason(exc), _NOT_SENT_REASONS)
    return False


def classify_failure(
    exc: BaseException, *, endpoint: str, reference: str | None
) -> GatewayCallError:
    """The gateway error to raise ``from exc``; its message names the failure's type, not data."""
    what = _describe(exc)
    if never_sent(exc):
        return GatewayNotSent(
            f"{endpoint}: request not sent: {what}", endpoint=endpoint, reference=reference
        )
    return GatewayOutcomeUnknown(
        f"{endpoint}: outcome unknown: {what}", endpoint=endpoint, reference=reference
    )


def decode_body(
    *, endpoint: str, reference: str | None, status: int, content: bytes
) -> dict[str, Any]:
    """The reply object, or ``GatewayOutcomeUnknown`` when the answer cannot be trusted to mean
    either accepted or refused (any non-200, non-JSON, no ``retCode`` or an unknown one)."""

    def unknown(why: str) -> GatewayOutcomeUnknown:
        return GatewayOutcomeUnknown(
            f"{endpoint}: outcome unknown: {why}",
            endpoint=endpoint,
            reference=reference,
            http_status=status,
        )

    if status != 200:
        raise unknown(f"HTTP {status}")
    try:
        doc = json.loads(content)
    except ValueError:
        raise unknown("body is not JSON") from None
    if not isinstance(doc, dict):
        raise unknown("body is not a JSON object")
    if doc.get("retCode") not in ("SUCCESS", "FAIL"):
        raise unknown("body has no retCode SUCCESS or FAIL")
    return doc
