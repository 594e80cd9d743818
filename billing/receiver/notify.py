"""``POST /iotpay/notify``: verify, persist, acknowledge, then apply (design step 5).

The answer tells IOTPay whether to send the notify again, so each one is chosen for that:

* ``200 SUCCESS`` only after ``receive_notification`` committed the raw notify (or found it
  already stored): from then on a crash loses nothing, because the reconciliation tick applies
  stored notifies that were never applied (``apply_pending_notifications``);
* ``400 FAIL`` for anything not genuine (not JSON, missing fields, bad sign, another merchant):
  nothing is stored, and resending it cannot help;
* ``413 FAIL`` for a body over ``max_body``, refused from ``Content-Length`` or while streaming,
  with ``Connection: close`` so the rest is never read;
* ``503 FAIL`` when it could not be stored (database down, any unexpected error): IOTPay will
  redeliver, and by then the database may be back.

Applying runs as a background task after the response is sent, so a slow invoice update never
makes the gateway time out and redeliver. Duplicates are acknowledged and not applied again.
The content type is not checked: the sign, not a header, says whether a notify is genuine.
Logs name exception classes and notification ids, never bodies or the key.
"""

from __future__ import annotations

import logging
import traceback

from fastapi import APIRouter, BackgroundTasks, Request, Response
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from billing.gateway import NOTIFY_ACK, NotifyError
from billing.metrics import Metrics
from billing.services.notifications import apply_notification, receive_notification
from billing.services.ports import Deps

__all__ = ["BodyTooLarge", "notify_router", "read_limited"]

log = logging.getLogger(__name__)

NOTIFY_PATH = "/iotpay/notify"
FAIL = "FAIL"


class BodyTooLarge(Exception):
    """The request body is larger than the receiver accepts."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or ``BodyTooLarge`` as soon as it is known to exceed ``limit`` bytes:
    from ``Content-Length`` before reading anything, else while streaming (chunked bodies)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def plain(status: int, text: str, *, close: bool = False) -> Response:
    headers = {"Connection": "close"} if close else None
    return Response(text, status_code=status, media_type="text/plain", headers=headers)


def describe_error(exc: BaseException) -> str:
    """The exception's class and where it was raised, without its message (which might quote
    input): enough to find the bug, nothing to leak."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def notify_router(deps: Deps, *, mch_id: str, mch_key: SecretStr, metrics: Metrics,
                  max_body: int) -> APIRouter:
    """The notify endpoint bound to one merchant's id and key."""
    router = APIRouter()

    @router.post(NOTIFY_PATH)
    async def notify(request: Request, background: BackgroundTasks) -> Response:
        try:
            raw = await read_limited(request, max_body)
        except BodyTooLarge:
            metrics.notify("rejected")
            log.warning("notify rejected: body over %d bytes", max_body)
            return plain(413, FAIL, close=True)
        except ClientDisconnect:
            return plain(400, FAIL, close=True)
        try:
            received = await run_in_threadpool(
                receive_notification, deps, raw, key=mch_key, mch_id=mch_id)
        except NotifyError as exc:
            metrics.notify("rejected")
            log.warning("notify rejected: %s: %s", type(exc).__name__, exc)
            return plain(400, FAIL)
        except Exception as exc:  # not stored: make the gateway send it again later
            metrics.notify("error")
            level = logging.WARNING if isinstance(exc, SQLAlchemyError) else logging.ERROR
            log.log(level, "notify not stored, answering 503: %s", describe_error(exc))
            return plain(503, FAIL)
        if received.duplicate:
            metrics.notify("duplicate")
            log.info("duplicate notify acknowledged")
        elif received.applied:
            metrics.notify("applied")
            log.info("notify stored as #%d, confirming a recorded success",
                     received.notification_id)
        elif received.notification_id is not None:
            log.info("notify stored as #%d", received.notification_id)
            background.add_task(apply_stored, deps, metrics, received.notification_id)
        return plain(200, NOTIFY_ACK)

    return router


def apply_stored(deps: Deps, metrics: Metrics, notification_id: int) -> None:
    """The background half: apply once and count the result. Never raises; a failure stays on
    the row (``error``) for the reconciliation tick to retry."""
    try:
        # The lag is observed by the service through ``deps.metrics`` while the attempt is loaded.
        outcome = apply_notification(deps, notification_id)
        metrics.notify(outcome or "error")  # last, so a counted notify is fully handled
    except Exception as exc:
        metrics.notify("error")
        log.error("applying notify #%d failed: %s", notification_id, describe_error(exc))
