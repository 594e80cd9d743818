"""``/v1/events`` (the audit trail, newest first) and ``/v1/plans`` (read-only: the catalog
lives in YAML and ``billing plans apply`` stores it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from billing.api.auth import Auth
from billing.api.context import ApiContext
from billing.api.limits import MAX_ID
from billing.api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from billing.api.schemas import EventOut, PlanOut
from billing.services import merchant_api


def events_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["events and plans"])
    deps = ctx.deps

    @router.get("/events", response_model=Page[EventOut])
    def list_events(caller: Auth, limit: Limit = 20, cursor: Cursor = None,
                    type: Annotated[str | None, Query(min_length=1, max_length=64,
                                                      description="Type prefix: payment.")]
                    = None,
                    customer: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                    subscription: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    ) -> Page[EventOut]:
        """Every state change the engine recorded, newest first."""
        rows = merchant_api.page_events(deps, before=decode_cursor(cursor), limit=limit + 1,
                                        type_prefix=type, customer=customer,
                                        subscription=subscription)
        return page_of(rows, limit, lambda e: int(e["id"]), EventOut.model_validate)

    @router.get("/plans", response_model=Page[PlanOut])
    def list_plans(caller: Auth) -> Page[PlanOut]:
        """The stored plans at their current version (a catalog is small: one page)."""
        data = [PlanOut.model_validate(p) for p in merchant_api.list_plans(deps)]
        return Page[PlanOut](data=data, has_more=False, next_cursor=None)

    return router
