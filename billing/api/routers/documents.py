"""``/v1/invoices`` and ``/v1/credit-notes``: list with filters, get, render (HTML, text,
PDF), the pay-now link of an open invoice, and refunds and voids of a paid one."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from billing.api.auth import Auth
from billing.api.context import ApiContext
from billing.api.idempotency import IdempotencyKey, respond_once
from billing.api.limits import MAX_ID, DocNumber
from billing.api.pagination import Cursor, Limit, Page, decode_cursor, page_of
from billing.api.problems import ApiProblem
from billing.api.schemas import (
    CreditNoteOut,
    CreditNoteSummaryOut,
    InvoiceOut,
    InvoiceSummaryOut,
    PayNowOut,
    RefundCreate,
    RefundOut,
)
from billing.documents import render_credit_note, render_invoice
from billing.domain.invoices import InvoiceStatus
from billing.services import merchant_api, refunds

Format = Annotated[Literal["html", "txt", "pdf"], Query(description="html, txt or pdf.")]
Locale = Annotated[Literal["en", "fr"] | None, Query(description="Default: the customer's.")]
CustomerFilter = Annotated[str | None, Query(min_length=1, max_length=64)]
Day = Annotated[date | None, Query(description="A local day in BILLING_TIMEZONE.")]
MEDIA = {"html": "text/html; charset=utf-8", "txt": "text/plain; charset=utf-8",
         "pdf": "application/pdf"}
RENDERED: dict[int | str, dict[str, Any]] = {200: {"description": "The document.", "content": {
    "text/html": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}},
    "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}}


def _check_days(start: date | None, end: date | None) -> None:
    if start and end and end < start:
        raise ApiProblem(422, "invalid-input", "issued_to: is before issued_from",
                         field="issued_to")
    for name, day in (("issued_from", start), ("issued_to", end)):
        if day is not None and not 1970 <= day.year <= 9998:
            raise ApiProblem(422, "invalid-input", f"{name}: must be between 1970 and 9998",
                             field=name)


def invoices_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/invoices", tags=["invoices"])
    deps = ctx.deps

    @router.get("", response_model=Page[InvoiceSummaryOut])
    def list_invoices(caller: Auth, limit: Limit = 20, cursor: Cursor = None,
                      customer: CustomerFilter = None,
                      subscription: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                      status: Annotated[InvoiceStatus | None, Query()] = None,
                      issued_from: Day = None, issued_to: Day = None) -> Page[InvoiceSummaryOut]:
        """Invoices, newest first."""
        _check_days(issued_from, issued_to)
        rows = merchant_api.page_invoices(
            deps, before=decode_cursor(cursor), limit=limit + 1, customer=customer,
            subscription=subscription, status=status.value if status else None,
            issued_from=issued_from, issued_to=issued_to, timezone=ctx.timezone)
        return page_of(rows, limit, lambda s: s.id, InvoiceSummaryOut.of)

    @router.get("/{number}", response_model=InvoiceOut)
    def get_invoice(number: DocNumber, caller: Auth) -> InvoiceOut:
        """Lines, taxes, totals, payments with their gateway references, refunds."""
        return InvoiceOut.of_document(merchant_api.invoice_document(deps, number))

    @router.get("/{number}/render", response_class=Response, responses=RENDERED)
    def render(number: DocNumber, caller: Auth, format: Format = "html",
               locale: Locale = None) -> Response:
        """The invoice as the customer sees it, with the templates it was issued with."""
        doc = merchant_api.invoice_document(deps, number)
        return Response(render_invoice(doc, ctx.merchant, format, locale),
                        media_type=MEDIA[format])

    @router.get("/{number}/pay-link", response_model=PayNowOut)
    def pay_link(number: DocNumber, caller: Auth) -> PayNowOut:
        """A signed link to the pay-now page of an open invoice."""
        url, expires = merchant_api.pay_now_link(deps, number)
        return PayNowOut.model_validate({"url": url, "expires_at": expires})

    @router.get("/{number}/refunds", response_model=Page[RefundOut])
    def list_refunds(number: DocNumber, caller: Auth) -> Page[RefundOut]:
        """Refunds and voids of one invoice (a handful: one page has them all)."""
        data = [RefundOut.of(v) for v in refunds.list_refunds(deps, number)]
        return Page[RefundOut](data=data, has_more=False, next_cursor=None)

    @router.post("/{number}/refunds", status_code=201, response_model=RefundOut)
    def refund(number: DocNumber, request: Request, caller: Auth,
               body: RefundCreate | None = None, key: IdempotencyKey = None) -> Response:
        """Refund a paid invoice in full or in part; a succeeded refund is a credit note. A
        `state` still in flight is settled by reconciliation: do not send it again."""
        chosen = body or RefundCreate()
        def work() -> tuple[int, RefundOut]:
            return 201, RefundOut.of(refunds.refund_invoice(
                deps, number, amount=chosen.amount, reason=chosen.reason))
        return respond_once(deps, caller, request, key, chosen, work)

    @router.post("/{number}/void", status_code=201, response_model=RefundOut)
    def void(number: DocNumber, request: Request, caller: Auth,
             key: IdempotencyKey = None) -> Response:
        """Void today's payment in full (the gateway allows it the same day only)."""
        def work() -> tuple[int, RefundOut]:
            return 201, RefundOut.of(refunds.refund_invoice(deps, number, void=True))
        return respond_once(deps, caller, request, key, None, work)

    return router


def credit_notes_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/credit-notes", tags=["credit notes"])
    deps = ctx.deps

    @router.get("", response_model=Page[CreditNoteSummaryOut])
    def list_credit_notes(caller: Auth, limit: Limit = 20, cursor: Cursor = None,
                          customer: CustomerFilter = None,
                          invoice: Annotated[str | None, Query(min_length=1, max_length=32)]
                          = None) -> Page[CreditNoteSummaryOut]:
        """Credit notes (succeeded refunds and voids), newest first."""
        rows = merchant_api.page_credit_notes(deps, before=decode_cursor(cursor),
                                              limit=limit + 1, customer=customer,
                                              invoice=invoice)
        return page_of(rows, limit, lambda s: s.id, CreditNoteSummaryOut.of)

    @router.get("/{number}", response_model=CreditNoteOut)
    def get_credit_note(number: DocNumber, caller: Auth) -> CreditNoteOut:
        return CreditNoteOut.of_document(merchant_api.credit_note_document(deps, number))

    @router.get("/{number}/render", response_class=Response, responses=RENDERED)
    def render(number: DocNumber, caller: Auth, format: Format = "html",
               locale: Locale = None) -> Response:
        doc = merchant_api.credit_note_document(deps, number)
        return Response(render_credit_note(doc, ctx.merchant, format, locale),
                        media_type=MEDIA[format])

    return router
