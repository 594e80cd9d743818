"""The merchant JSON API, installed on the receiver's FastAPI app under ``/v1``.

    app = create_app(deps, mch_id=..., mch_key=..., api=ApiContext(deps, merchant, "UTC"))

``install_api`` adds the routers (every one behind the bearer key), the problem+json error
handlers, and the OpenAPI document at ``/openapi.json`` with its pages at ``/docs``. The
document describes the API only (the receiver's routes are left out of it); every route
declares the errors it can answer. Error handlers answer problem+json under ``/v1`` and leave
other paths with FastAPI's own answers, so the receiver behaves as before.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing.api.auth import current_caller
from billing.api.context import ApiContext
from billing.api.problems import (
    MEDIA_TYPE,
    PROBLEM_RESPONSES,
    ApiProblem,
    Problem,
    on_api_problem,
    on_billing_error,
    on_validation_error,
    problem_body,
    problem_response,
    reject_unknown_query,
)
from billing.api.routers.catalog import events_router
from billing.api.routers.customers import customers_router
from billing.api.routers.documents import credit_notes_router, invoices_router
from billing.api.routers.reports import reports_router
from billing.api.routers.subscriptions import subscriptions_router
from billing.errors import BillingError

log = logging.getLogger(__name__)
PREFIX = "/v1"
SLUGS = {400: "malformed-request", 401: "unauthorized", 404: "not-found", 405: "method-not-allowed"}


def install_api(app: FastAPI, ctx: ApiContext) -> None:
    app.state.api = ctx
    for build in (customers_router, subscriptions_router, invoices_router,
                  credit_notes_router, events_router, reports_router):
        app.include_router(build(ctx), prefix=PREFIX, responses=PROBLEM_RESPONSES,
                           dependencies=[Depends(current_caller),
                                         Depends(reject_unknown_query)])
    app.add_exception_handler(ApiProblem, on_api_problem)
    app.add_exception_handler(BillingError, on_billing_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(ApiUnavailable)


class ApiUnavailable:
    """ASGI middleware inside the receiver's ``NeverFail``: under ``/v1`` an exception nothing
    else handled (the database gone, a bug) is a problem+json 503 with ``Retry-After``, the
    shape the OpenAPI document declares, rather than ``NeverFail``'s plain-text one. Only its
    class is logged: its message may hold request data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            log.error("API request failed: %s on %s", type(exc).__name__, path)
            problem = problem_body(503, "unavailable", "the request could not be completed; "
                                   "retry later")
            await problem_response(problem, {"Retry-After": "30"})(scope, receive, send)


def _is_api(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/")


async def _validation_error(request: Request, exc: Exception) -> Response:
    if _is_api(request):
        return await on_validation_error(request, exc)
    assert isinstance(exc, RequestValidationError)
    return await request_validation_exception_handler(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not _is_api(request):
        return await http_exception_handler(request, exc)
    slug = SLUGS.get(exc.status_code, "invalid-input")
    return problem_response(problem_body(exc.status_code, slug, str(exc.detail)),
                            dict(exc.headers or {}))


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The document, built once: problems declared as ``application/problem+json`` only (FastAPI
    would add its own 422 shape), and the bearer scheme applied to every operation."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title="billing API", version="1", routes=app.routes,
                         description="The merchant JSON API: see docs/api.md.")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for defs_name, definition in components["Problem"].pop("$defs", {}).items():
        components[defs_name] = definition
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {MEDIA_TYPE: {
                        "schema": {"$ref": "#/components/schemas/Problem"}}}
    app.openapi_schema = schema
    return schema
