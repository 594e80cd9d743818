"""Browser routes for cards: the gateway's return from the hosted card page, and the signed
update-card link from dunning emails.

The update-card link is two steps: ``GET`` checks the token and shows a "Continue" button,
``POST`` (the button) opens the gateway's card page. A ``GET`` changes nothing, because mail
providers' link scanners fetch every link in an email before the customer sees it.

``retCode`` on the return URL is unsigned, so it is ignored: only ``confirm_card``, which asks
the gateway with ``cc_querycard``, activates a card. Both routes are plain ``def`` so FastAPI runs
them in its thread pool while they wait on the database and the gateway. Every failure maps to
a page with a 4xx or 503 status; the messages say what to do, not what broke.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from billing.errors import Conflict, GatewayError, NotFound
from billing.receiver.notify import describe_error
from billing.receiver.pages import SAFE_HEADERS, card_saved, continue_page, page
from billing.services.cards import confirm_card, start_card_setup
from billing.services.links import card_return_valid, customer_of_token
from billing.services.ports import Deps

__all__ = ["cards_router"]

log = logging.getLogger(__name__)

MAX_CARD_ID = 30
MAX_TOKEN = 64


def cards_router(deps: Deps) -> APIRouter:
    router = APIRouter()

    @router.get("/iotpay/return/addcard")
    def addcard_return(request: Request) -> Response:
        card_id = request.query_params.get("cardId", "")
        if not card_id or len(card_id) > MAX_CARD_ID or not card_id.isprintable():
            return page(400, "Card not saved", "This link is incomplete.")
        if not card_return_valid(deps.config, card_id, request.query_params.get("sig", "")):
            return page(404, "Card not found", "We have no card setup under this reference.")
        return _confirm(deps, card_id)

    @router.get("/billing/update-card/{token}")
    def update_card(token: str) -> Response:
        if _customer_of(deps, token) is None:
            return _link_not_valid()
        return continue_page()

    @router.post("/billing/update-card/{token}")
    def update_card_continue(token: str) -> Response:
        customer_id = _customer_of(deps, token)
        if customer_id is None:
            return _link_not_valid()
        return _start_setup(deps, customer_id)

    return router


def _link_not_valid() -> Response:
    return page(404, "Link not valid",
                "This link is not valid or has expired. Please use the latest email we sent you.")


def _confirm(deps: Deps, card_id: str) -> Response:
    try:
        view = confirm_card(deps, card_id)
    except NotFound:
        return page(404, "Card not found", "We have no card setup under this reference.")
    except Conflict:
        log.info("card %s not confirmed by the gateway; it stays pending", card_id)
        return page(409, "Card not saved",
                    "The payment provider did not confirm your card. Please try again.")
    except Exception as exc:
        return _unavailable("confirming a card", exc)
    return card_saved(view.number)


def _customer_of(deps: Deps, token: str) -> int | None:
    """``customer_of_token``, guarded: it compares with ``hmac.compare_digest``, which raises
    ``TypeError`` on non-ASCII text, and any garbage in a URL must be a 404, not an error."""
    if len(token) > MAX_TOKEN or not token.isascii():
        return None
    try:
        return customer_of_token(deps.config, token, deps.clock.now())
    except Exception:
        return None


def _start_setup(deps: Deps, customer_id: int) -> Response:
    try:
        _, url = start_card_setup(deps, f"#{customer_id}")
    except NotFound:
        return page(404, "Link not valid", "This link is not valid any more.")
    except Conflict:
        log.warning("the gateway refused to open a card page for customer #%d", customer_id)
        return page(503, "Please try again later",
                    "The payment provider is not available right now.")
    except Exception as exc:
        return _unavailable("opening a card page", exc)
    return RedirectResponse(url, status_code=303, headers=SAFE_HEADERS)


def _unavailable(doing: str, exc: Exception) -> Response:
    expected = isinstance(exc, GatewayError)
    log.log(logging.WARNING if expected else logging.ERROR, "%s failed: %s", doing,
            describe_error(exc))
    return page(503, "Please try again later",
                "We could not complete this right now. Please try again in a few minutes.")
