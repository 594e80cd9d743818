"""``/v1/customers`` and their cards: create, get, list; hosted or direct card add, list,
remove."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from billing.api.auth import Auth
from billing.api.context import ApiContext
from billing.api.idempotency import IdempotencyKey, respond_once
from billing.api.limits import CustomerRef
from billing.api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from billing.api.schemas import (
    CardDirectCreate,
    CardOut,
    CardSetupOut,
    CustomerCreate,
    CustomerOut,
)
from billing.services import cards, merchant_api

CardRef = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def customers_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/customers", tags=["customers"])
    deps = ctx.deps

    @router.post("", status_code=201, response_model=CustomerOut)
    def create_customer(body: CustomerCreate, request: Request, caller: Auth,
                        key: IdempotencyKey = None) -> Response:
        """Add a customer (`billing customers add`)."""
        def work() -> tuple[int, CustomerOut]:
            fields = body.model_dump()
            fields["timezone"] = fields["timezone"] or ctx.timezone
            return 201, CustomerOut.of(merchant_api.create_customer(deps, **fields))
        return respond_once(deps, caller, request, key, body, work)

    @router.get("", response_model=Page[CustomerOut])
    def list_customers(caller: Auth, limit: Limit = 20,
                       cursor: Cursor = None) -> Page[CustomerOut]:
        """Customers, oldest first."""
        rows = merchant_api.page_customers(deps, after=decode_cursor(cursor), limit=limit + 1)
        return page_of(rows, limit, lambda v: v.id, CustomerOut.of)

    @router.get("/{customer}", response_model=CustomerOut)
    def get_customer(customer: CustomerRef, caller: Auth) -> CustomerOut:
        return CustomerOut.of(merchant_api.get_customer(deps, customer))

    @router.post("/{customer}/card-setups", status_code=201, response_model=CardSetupOut)
    def start_card_setup(customer: CustomerRef, request: Request, caller: Auth,
                         key: IdempotencyKey = None) -> Response:
        """Reserve a card id and open the gateway's hosted card page (`cards add`): send the
        customer to `redirect_url`; the card becomes active when they come back."""
        def work() -> tuple[int, CardSetupOut]:
            view, url = cards.start_card_setup(deps, customer)
            return 201, CardSetupOut(card=CardOut.of(view), redirect_url=url)
        return respond_once(deps, caller, request, key, None, work)

    @router.post("/{customer}/cards", status_code=201, response_model=CardOut)
    def add_card_direct(customer: CustomerRef, body: CardDirectCreate, request: Request,
                        caller: Auth, key: IdempotencyKey = None) -> Response:
        """Vault a card from its number (PCI DSS merchants only; `cards add-direct`)."""
        def work() -> tuple[int, CardOut]:
            view = cards.add_direct(deps, customer, number=body.number, cvv=body.cvv,
                                    expiry=body.expiry, holder=body.holder)
            return 201, CardOut.of(view)
        return respond_once(deps, caller, request, key, body, work)

    @router.get("/{customer}/cards", response_model=Page[CardOut])
    def list_cards(customer: CustomerRef, caller: Auth) -> Page[CardOut]:
        """The customer's cards as stored: a customer has a handful, so one page has them all
        (the shape is every list's, ``has_more`` is always false)."""
        data = [CardOut.of(v) for v in cards.list_cards(deps, customer)]
        return Page[CardOut](data=data, has_more=False, next_cursor=None)

    @router.delete("/{customer}/cards/{card_id}", response_model=CardOut)
    def remove_card(customer: CustomerRef, card_id: CardRef, caller: Auth) -> CardOut:
        """Stop charging this card; subscriptions move to the newest other active card."""
        return CardOut.of(merchant_api.remove_card(deps, customer, card_id))

    return router
