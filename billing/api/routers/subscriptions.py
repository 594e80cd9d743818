"""``/v1/subscriptions``: create, get, list, preview and apply a plan change, cancel (now or at
period end), pause, resume, reactivate; every rule is ``billing.services.subscriptions``'."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from billing.api.auth import Auth
from billing.api.context import ApiContext
from billing.api.idempotency import IdempotencyKey, respond_once
from billing.api.limits import MAX_ID
from billing.api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from billing.api.schemas import (
    ChangePreviewOut,
    PlanChange,
    SubscriptionCancel,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionOut,
)
from billing.domain.subscriptions import Status
from billing.services import merchant_api
from billing.services.api_keys import Caller

SubId = Annotated[int, Path(ge=1, le=MAX_ID)]
StatusFilter = Annotated[Status | None, Query()]


def subscriptions_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])
    deps = ctx.deps
    policy = deps.config.lifecycle

    @router.post("", status_code=201, response_model=SubscriptionCreated)
    def create_subscription(body: SubscriptionCreate, request: Request, caller: Auth,
                            key: IdempotencyKey = None) -> Response:
        """Subscribe a customer; the current period is invoiced at once (unless in trial) and
        the engine charges it on its next pass."""
        def work() -> tuple[int, SubscriptionCreated]:
            result, view = merchant_api.act_on_subscription(deps, "create", 0,
                                                            **body.model_dump())
            return 201, SubscriptionCreated(**SubscriptionOut.of(view).model_dump(),
                                            invoices_issued=int(result["invoices_issued"]))
        return respond_once(deps, caller, request, key, body, work)

    @router.get("", response_model=Page[SubscriptionOut])
    def list_subscriptions(caller: Auth, limit: Limit = 20, cursor: Cursor = None,
                           customer: Annotated[str | None, Query(min_length=1,
                                                                 max_length=64)] = None,
                           status: StatusFilter = None) -> Page[SubscriptionOut]:
        rows = merchant_api.page_subscriptions(
            deps, after=decode_cursor(cursor), limit=limit + 1, customer=customer,
            status=status.value if status else None)
        return page_of(rows, limit, lambda v: int(v.fields["id"]), SubscriptionOut.of)

    @router.get("/{sub_id}", response_model=SubscriptionOut)
    def get_subscription(sub_id: SubId, caller: Auth) -> SubscriptionOut:
        return SubscriptionOut.of(merchant_api.get_subscription(deps, sub_id))

    def lifecycle(action: str, sub_id: int, request: Request, caller: Caller, key: str | None,
                  body: Any = None, **kwargs: Any) -> Response:
        def work() -> tuple[int, SubscriptionOut]:
            _, view = merchant_api.act_on_subscription(deps, action, sub_id, **kwargs)
            return 200, SubscriptionOut.of(view)
        return respond_once(deps, caller, request, key, body, work)

    @router.post("/{sub_id}/cancel", response_model=SubscriptionOut)
    def cancel(sub_id: SubId, request: Request, caller: Auth, body: SubscriptionCancel | None
               = None, key: IdempotencyKey = None) -> Response:
        """Cancel now (open invoices follow BILLING_ON_CANCEL), or with `at_period_end` at the
        end of the current period (undo with `reactivate`)."""
        chosen = body or SubscriptionCancel()
        return lifecycle("cancel", sub_id, request, caller, key, chosen,
                         at_period_end=chosen.at_period_end, policy=policy)

    @router.post("/{sub_id}/pause", response_model=SubscriptionOut)
    def pause(sub_id: SubId, request: Request, caller: Auth,
              key: IdempotencyKey = None) -> Response:
        return lifecycle("pause", sub_id, request, caller, key, policy=policy)

    @router.post("/{sub_id}/resume", response_model=SubscriptionOut)
    def resume(sub_id: SubId, request: Request, caller: Auth,
               key: IdempotencyKey = None) -> Response:
        return lifecycle("resume", sub_id, request, caller, key, policy=policy)

    @router.post("/{sub_id}/reactivate", response_model=SubscriptionOut)
    def reactivate(sub_id: SubId, request: Request, caller: Auth,
                   key: IdempotencyKey = None) -> Response:
        """Undo a cancel-at-period-end before the period ends."""
        return lifecycle("reactivate", sub_id, request, caller, key)

    @router.post("/{sub_id}/change-preview", response_model=ChangePreviewOut)
    def preview_change(sub_id: SubId, body: PlanChange, request: Request, caller: Auth,
                       key: IdempotencyKey = None) -> Response:
        """What a plan or quantity change would charge or credit now; changes nothing."""
        def work() -> tuple[int, ChangePreviewOut]:
            return 200, ChangePreviewOut.of(merchant_api.change_plan(
                deps, sub_id, plan=body.plan, quantity=body.quantity, when=body.when,
                preview=True))
        return respond_once(deps, caller, request, key, body, work)

    @router.post("/{sub_id}/change", response_model=ChangePreviewOut)
    def change(sub_id: SubId, body: PlanChange, request: Request, caller: Auth,
               key: IdempotencyKey = None) -> Response:
        """Upgrade now with an exact proration, or downgrade at the period end."""
        def work() -> tuple[int, ChangePreviewOut]:
            return 200, ChangePreviewOut.of(merchant_api.change_plan(
                deps, sub_id, plan=body.plan, quantity=body.quantity, when=body.when,
                preview=False))
        return respond_once(deps, caller, request, key, body, work)

    return router
