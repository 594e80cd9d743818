"""``/v1/reports``: the figures of ``billing report`` (invoices, cash, MRR and its movements,
dunning recovery, aging) for a range of local days, as JSON, CSV or HTML (docs/reports.md)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from billing.api.auth import Auth
from billing.api.context import ApiContext
from billing.api.problems import ApiProblem
from billing.reports.render import render
from billing.services import merchant_api

Day = Annotated[date | None, Query(description="A local day in BILLING_TIMEZONE, inclusive; "
                                   "default: last month.")]
MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8",
         "html": "text/html; charset=utf-8"}
RENDERED: dict[int | str, dict[str, Any]] = {200: {"description": "The report.", "content": {
    "application/json": {"schema": {"type": "object"}},
    "text/csv": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}}}}


def reports_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["reports"])

    @router.get("/reports", response_class=Response, responses=RENDERED)
    def report(caller: Auth, start: Annotated[date | None, Query(alias="from")] = None,
               end: Annotated[date | None, Query(alias="to")] = None,
               format: Annotated[Literal["json", "csv", "html"], Query()] = "json") -> Response:
        """Invoices, cash, MRR and its movements, dunning recovery and aging for a range."""
        for name, day in (("from", start), ("to", end)):
            if day is not None and not 1970 <= day.year <= 9998:
                raise ApiProblem(422, "invalid-input", f"{name}: must be between 1970 and 9998",
                                 field=name)
        built = merchant_api.build_report(ctx.deps, start, end, ctx.timezone)
        return Response(render(built, format, merchant=ctx.merchant.name),
                        media_type=MEDIA[format])

    return router
