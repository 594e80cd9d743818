"""The receiver: the engine's only HTTP surface, an ASGI app built by ``create_app``.

    app = create_app(deps, mch_id="10000701", mch_key=SecretStr("..."))
    with ReceiverServer(app, host="0.0.0.0", port=8080):  # billing.receiver.server
        ...

Routes: ``POST /iotpay/notify`` (``billing.receiver.notify``), ``GET /iotpay/return/addcard``
and ``GET``/``POST /billing/update-card/{token}`` (``billing.receiver.cards``), ``GET /healthz`` and
``GET /metrics`` (``billing.receiver.ops``), ``GET``/``POST /billing/pay/{token}`` and
``GET /iotpay/return/pay`` (``billing.receiver.paynow``). Unknown routes are FastAPI's 404/405.

With ``api=ApiContext(...)`` the merchant JSON API (``billing.api``) is served beside them under
``/v1``, with its OpenAPI document at ``/openapi.json`` and its pages at ``/docs``; the
receiver's routes stay out of that document (they are not the merchant's API). With
``serve_ops=False`` the public app leaves ``/healthz`` and ``/metrics`` to ``create_ops_app``,
served on an internal port (``BILLING_INTERNAL_PORT``).

No input may produce a 500: every route catches its own failures, and ``NeverFail`` is the last
line, turning anything that still escapes into a 503 (retry later) and logging only its class.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing.metrics import Metrics
from billing.receiver.cards import cards_router
from billing.receiver.notify import describe_error, notify_router
from billing.receiver.ops import ops_router
from billing.receiver.paynow import paynow_router
from billing.services.ports import Deps

if TYPE_CHECKING:
    from billing.api.context import ApiContext

__all__ = ["DEFAULT_MAX_BODY", "NeverFail", "create_app", "create_ops_app"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 64 * 1024
"""A notify is well under 2 KiB; 64 KiB leaves room for new fields and nothing for abuse."""


def create_app(deps: Deps, *, mch_id: str, mch_key: SecretStr, metrics: Metrics | None = None,
               max_body: int = DEFAULT_MAX_BODY, api: ApiContext | None = None,
               serve_ops: bool = True) -> FastAPI:
    """The receiver for one merchant; ``metrics`` defaults to ``deps.metrics``, else a fresh
    ``Metrics`` over ``deps.store`` (its registry is ``app.state.metrics.registry``). The
    services this app calls report to the same object, so ``/metrics`` shows what they did."""
    if metrics is None:
        metrics = deps.metrics if isinstance(deps.metrics, Metrics) else Metrics(deps.store,
                                                                                 deps.clock)
    if deps.metrics is None:
        deps.metrics = metrics
    public = api is not None
    app = FastAPI(title="billing API" if public else "billing receiver",
                  docs_url="/docs" if public else None, redoc_url=None,
                  openapi_url="/openapi.json" if public else None)
    app.state.metrics = metrics
    app.include_router(notify_router(deps, mch_id=mch_id, mch_key=mch_key, metrics=metrics,
                                     max_body=max_body), include_in_schema=False)
    app.include_router(cards_router(deps), include_in_schema=False)
    app.include_router(paynow_router(deps), include_in_schema=False)
    if serve_ops:
        app.include_router(ops_router(deps.store, metrics), include_in_schema=False)
    if api is not None:
        from billing.api.app import install_api

        install_api(app, api)
    app.add_middleware(NeverFail)
    return app


def create_ops_app(deps: Deps, metrics: Metrics) -> FastAPI:
    """Only ``/healthz`` and ``/metrics``, for an internal port that the internet can't reach."""
    app = FastAPI(title="billing ops", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.metrics = metrics
    app.include_router(ops_router(deps.store, metrics))
    app.add_middleware(NeverFail)
    return app


class NeverFail:
    """ASGI middleware: an exception that escapes a route becomes a plain 503, or, if the
    response had already started (a background task failed after it), is logged and dropped.
    Starlette's own error middleware would answer 500 and re-raise into the server's log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unhandled error on %s: %s", scope.get("path", "?"), describe_error(exc))
            if not started:
                await send({"type": "http.response.start", "status": 503,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", b"4"), (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": b"FAIL"})
