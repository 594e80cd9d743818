"""Browser routes for pay-now links: the signed link from payment-failed, reminder and
final-notice emails, and the gateway's return from the hosted payment page.

Like the update-card link, the link is two steps: ``GET /billing/pay/{token}`` checks the token
and shows the invoice with a "Pay now" button and changes nothing (mail scanners fetch every
link); ``POST`` (the button) commits a payment attempt and redirects (303) to the gateway's
hosted ``cc_purchase`` page. ``GET /iotpay/return/pay`` is where the gateway sends the browser
back: its ``retCode`` and ``status`` are unsigned and ignored; only ``confirm_pay_now``, which
asks the gateway with ``cc_query``, settles anything. Routes are plain ``def`` (FastAPI's thread
pool) and every failure is a page with a 4xx or 503 status, never a traceback.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from billing.documents.formatting import LOCALES, Formatter
from billing.errors import NotFound
from billing.receiver.pages import SAFE_HEADERS, page
from billing.services.links import invoice_of_pay_token, pay_return_valid
from billing.services.paynow import (
    InvoiceNotPayable,
    PaymentInProgress,
    PayNowResult,
    PayNowUnavailable,
    PayNowView,
    confirm_pay_now,
    show_pay_now,
    start_pay_now,
)
from billing.services.ports import Deps

__all__ = ["paynow_router"]

log = logging.getLogger(__name__)

MAX_TOKEN = 64
MAX_ORDER = 30

WORDS = {
    "en": {
        "title": "Pay invoice {number}",
        "due": "{merchant}: invoice {number}, {amount} due. You will enter your card on our "
               "payment provider's secure page.",
        "button": "Pay now",
        "not_due_title": "Nothing to pay",
        "not_due": "Invoice {number} is {status}: there is nothing to pay.",
        "busy_title": "Payment in progress",
        "busy": "A payment for this invoice is already in progress. Please check again in a "
                "few minutes; you will not be charged twice.",
    },
    "fr": {
        "title": "Payer la facture {number}",
        "due": "{merchant} : facture {number}, {amount} à payer. Vous saisirez votre carte sur "
               "la page sécurisée de notre prestataire de paiement.",
        "button": "Payer maintenant",
        "not_due_title": "Rien à payer",
        "not_due": "La facture {number} est {status} : il n'y a rien à payer.",
        "busy_title": "Paiement en cours",
        "busy": "Un paiement pour cette facture est déjà en cours. Revenez dans quelques "
                "minutes ; vous ne serez pas débité deux fois.",
    },
}
STATUS_FR = {"paid": "payée", "void": "annulée", "uncollectible": "irrécouvrable"}


def paynow_router(deps: Deps) -> APIRouter:
    router = APIRouter()

    @router.get("/billing/pay/{token}")
    def pay_link(token: str) -> Response:
        view = _view_of(deps, token)
        if view is None:
            return _link_not_valid()
        if not view.payable:
            return _not_due(view)
        words = _words(view)
        return page(200, words["title"].format(number=view.number), _due(view),
                    button=words["button"], lang=_lang(view))

    @router.post("/billing/pay/{token}")
    def pay_link_continue(token: str) -> Response:
        view = _view_of(deps, token)
        if view is None:
            return _link_not_valid()
        return _start(deps, view)

    @router.get("/iotpay/return/pay")
    def pay_return(request: Request) -> Response:
        order = request.query_params.get("order", "")
        if not order or len(order) > MAX_ORDER or not order.isprintable():
            return page(400, "Payment not found", "This link is incomplete.")
        if not pay_return_valid(deps.config, order, request.query_params.get("sig", "")):
            return page(404, "Payment not found", "We have no payment under this reference.")
        return _confirm(deps, order)

    return router


def _lang(view: PayNowView) -> str:
    return view.locale if view.locale in LOCALES else "en"


def _words(view: PayNowView) -> dict[str, str]:
    return WORDS[_lang(view)]


def _due(view: PayNowView) -> str:
    amount = Formatter(_lang(view), view.currency, view.timezone).money(view.amount_due)
    return _words(view)["due"].format(merchant=view.merchant, number=view.number, amount=amount)


def _not_due(view: PayNowView) -> Response:
    words = _words(view)
    status = STATUS_FR.get(view.status, view.status) if view.locale == "fr" else view.status
    return page(409, words["not_due_title"],
                words["not_due"].format(number=view.number, status=status), lang=_lang(view))


def _view_of(deps: Deps, token: str) -> PayNowView | None:
    """The invoice a token names, or None for a malformed, forged or expired token (garbage in a
    URL, non-ASCII included, is a 404, never an error) or an invoice that no longer exists."""
    if len(token) > MAX_TOKEN or not token.isascii():
        return None
    try:
        invoice_id = invoice_of_pay_token(deps.config, token, deps.clock.now())
        return None if invoice_id is None else show_pay_now(deps, invoice_id)
    except NotFound:
        return None


def _link_not_valid() -> Response:
    return page(404, "Link not valid",
                "This link is not valid or has expired. Please use the latest email we sent you.")


def _start(deps: Deps, view: PayNowView) -> Response:
    words = _words(view)
    try:
        url = start_pay_now(deps, view.invoice_id)
    except InvoiceNotPayable:
        return _not_due(show_pay_now(deps, view.invoice_id))
    except PaymentInProgress:
        return page(409, words["busy_title"], words["busy"], lang=_lang(view))
    except PayNowUnavailable as exc:
        log.warning("pay-now for invoice %s: %s", view.number, exc)
        return _unavailable()
    except Exception:
        log.exception("pay-now for invoice %s failed", view.number)
        return _unavailable()
    return RedirectResponse(url, status_code=303, headers=SAFE_HEADERS)


def _confirm(deps: Deps, order: str) -> Response:
    try:
        result = confirm_pay_now(deps, order)
    except NotFound:
        return page(404, "Payment not found", "We have no payment under this reference.")
    except Exception:
        log.exception("confirming pay-now %s failed", order)
        return _not_confirmed()
    if result is PayNowResult.REFUNDING:
        return page(200, "Already paid",
                    "This invoice was already paid, so this payment is being refunded to your "
                    "card automatically. You can close this page.")
    if result is PayNowResult.PAID:
        return page(200, "Paid, thank you", "Your payment was received. You can close this page.")
    if result is PayNowResult.PROCESSING:
        return page(202, "Payment processing",
                    "Your payment is being processed. We will email you once it is confirmed.")
    return page(200, "Not paid",
                "Your payment did not go through and nothing was charged. You can try again "
                "from the link in your email.")


def _not_confirmed() -> Response:
    """The way back from the hosted page: the customer may have paid, so never "nothing was
    charged" here (that is the click's wording, when no page was opened)."""
    return page(503, "Payment not confirmed yet",
                "We could not confirm your payment right now. If you paid, it will be recorded "
                "and we will email you; please do not pay again.")


def _unavailable() -> Response:
    return page(503, "Please try again later",
                "We could not open the payment page right now. Nothing was charged. Please try "
                "again in a few minutes.")
