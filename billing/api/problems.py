"""Errors as RFC 9457 ``application/problem+json``: one shape, a machine-readable ``type``.

    {"type": "urn:billing:problem:not-found", "title": "Not found", "status": 404,
     "detail": "no customer 'cus_9'", "field": null}

The project's exceptions map here once (``problem_of``), so every route answers the same way:
``NotFound`` 404, ``Conflict`` 409, ``InvalidInput`` and other user mistakes 422 (with the field
at fault when the message names one), an unreachable gateway 503 with ``Retry-After``. Request
validation errors list every field; their messages never echo the input, which may be a card
number. ``PROBLEM_RESPONSES`` declares these answers in the OpenAPI document.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from billing.errors import BillingError, Conflict, GatewayError, NotFound, UserError
from billing.gateway.masking import redact_pans
from billing.services.idempotency import InProgress, KeyReused

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:billing:problem:"
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*): ")
TITLES = {
    "unauthorized": "Missing or invalid API key",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "conflict": "Conflict with the current state",
    "idempotency-in-progress": "A request with this Idempotency-Key is in progress",
    "idempotency-key-reused": "Idempotency-Key reused with another request",
    "invalid-input": "Invalid input",
    "malformed-request": "The request could not be read",
    "validation-error": "The request does not match the schema",
    "gateway-unavailable": "The payment gateway could not be reached",
    "unavailable": "Temporarily unavailable",
    "outcome-unknown": "The request failed and may have taken effect",
}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem; ``type`` is one of ``urn:billing:problem:<slug>`` (docs/api.md)."""

    model_config = ConfigDict(extra="forbid")

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    """The request field at fault (``email``, ``quantity``...), when there is one."""
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """Raised by the API itself (401, a bad cursor...) and turned into a problem response."""

    def __init__(self, status: int, slug: str, detail: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.field, self.headers = field, headers or {}


def problem_body(status: int, slug: str, detail: str, *, field: str | None = None,
                 errors: list[FieldError] | None = None) -> Problem:
    return Problem(type=TYPE_PREFIX + slug, title=TITLES.get(slug, slug), status=status,
                   detail=redact_pans(detail), field=field, errors=errors)


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem.model_dump(mode="json", exclude_none=True),
                        status_code=problem.status, media_type=MEDIA_TYPE, headers=headers)


def problem_of(exc: BillingError) -> tuple[Problem, dict[str, str]]:
    """The answer to one of the project's exceptions, and its extra headers."""
    text = str(exc)
    found = _FIELD.match(text)
    field = found.group(1) if found else None
    if isinstance(exc, NotFound):
        return problem_body(404, "not-found", text), {}
    if isinstance(exc, InProgress):
        return problem_body(409, "idempotency-in-progress", text), {"Retry-After": "1"}
    if isinstance(exc, KeyReused):
        return problem_body(422, "idempotency-key-reused", text,
                            field="Idempotency-Key"), {}
    if isinstance(exc, Conflict):
        return problem_body(409, "conflict", text), {}
    if isinstance(exc, UserError):
        return problem_body(422, "invalid-input", text, field=field), {}
    if isinstance(exc, GatewayError):
        return problem_body(503, "gateway-unavailable", text), {"Retry-After": "30"}
    return problem_body(503, "unavailable", type(exc).__name__), {"Retry-After": "30"}


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_problem(exc: RequestValidationError) -> Problem:
    errors = [FieldError(field=_location(e.get("loc", ())),
                         message=str(e.get("msg", "invalid")).removeprefix("Value error, "))
              for e in exc.errors()]
    first = errors[0] if errors else FieldError(field="body", message="invalid")
    return problem_body(422, "validation-error", f"{first.field}: {first.message}",
                        field=first.field, errors=errors)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_problem(exc))


async def on_api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(problem_body(exc.status, exc.slug, exc.detail, field=exc.field),
                            exc.headers)


async def on_billing_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BillingError)
    problem, headers = problem_of(exc)
    return problem_response(problem, headers)


def _declared(description: str) -> dict[str, Any]:
    return {"description": description, "content": {
        MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _declared("The body could not be read (not JSON, or not UTF-8)."),
    401: _declared("No API key, an unknown one, or a revoked one; nothing was changed."),
    404: _declared("A referenced customer, subscription, invoice... does not exist."),
    409: _declared("The request contradicts the current state, or the same Idempotency-Key "
                   "is in progress."),
    422: _declared("Invalid input: the problem's `field` names the one at fault."),
    503: _declared("The gateway or the database could not be reached; retry later."),
}
"""Every error a route of the API can answer, declared once for the OpenAPI document."""


def reject_unknown_query(request: Request) -> None:
    """A query parameter the route does not declare is a 422 on that name: ``?statuss=open``
    silently ignored would list every invoice as if it had filtered. A NUL character in a
    query or path value is a 422 too."""
    from fastapi.routing import APIRoute

    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    for name in request.query_params:
        if name not in known:
            raise ApiProblem(422, "validation-error", f"{name or '(empty)'}: unknown query "
                             "parameter", field=name or "(empty)")
    values = [*request.query_params.multi_items(), *request.path_params.items()]
    for name, value in values:
        if "\x00" in str(value):
            # PostgreSQL text can't hold NUL: refused here, it would fail in the driver.
            raise ApiProblem(422, "validation-error", f"{name}: must not contain NUL "
                             "characters", field=name)


def _query_names(dependant: Any) -> set[str]:
    """The query parameters a route reads, its dependencies' included."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
