"""``billing invoices list | show | render | pay-link`` and
``billing credit-notes list | show | render``.

The commands read through ``billing.services.documents`` (one transaction, read models only) and
render through ``billing.documents``; they never touch the store's rows themselves.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from billing.bootstrap import engine_config
from billing.cli.context import open_store, state
from billing.cli.output import out, print_fields, print_json, print_table
from billing.cli.params import SubscriptionFilter
from billing.documents import (
    FORMATS,
    merchant_from_settings,
    render_credit_note,
    render_invoice,
)
from billing.domain.money import Money
from billing.errors import InvalidInput
from billing.services import documents as docs
from billing.services.paynow import pay_link
from billing.store.uow import UnitOfWork

T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
CustomerOpt = Annotated[str | None, typer.Option("--customer", help="Only this customer (id "
                                                 "or #N).")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Issued on or after this date "
                                             "(YYYY-MM-DD, BILLING_TIMEZONE).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Issued on or before this date.")]
LimitOpt = Annotated[int, typer.Option(min=1, max=10000, help="At most this many, newest "
                                       "first.")]
FormatOpt = Annotated[str, typer.Option("--format", help="html, txt or pdf.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file "
                                                "instead of standard output.")]
LocaleOpt = Annotated[str | None, typer.Option("--locale", help="en or fr; default: the "
                                               "customer's.")]


def read(action: Callable[[UnitOfWork], T]) -> T:
    """Run one read use case in its own unit of work (rolled back: nothing is written)."""
    store = open_store()
    try:
        with UnitOfWork(store) as uow:
            return action(uow)
    finally:
        store.close()


def _date(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{option} must be a date like 2026-03-01 (got {value!r})") from None


def plain(value: Any) -> Any:
    """A read model as JSON-ready data: datetimes in ISO 8601, dataclasses as mappings."""
    if is_dataclass(value) and not isinstance(value, type):
        data = {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, docs.InvoiceDocument):
            data["amount_due"] = value.amount_due
        return data
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def _iso(at: datetime | None) -> str:
    return at.isoformat() if at else ""


def write_output(data: bytes, output: Path | None, fmt: str) -> None:
    """To ``output`` (written whole, then renamed, so a reader never sees half a PDF), or to
    standard output; a PDF is not poured onto a terminal."""
    if output is None:
        if fmt == "pdf" and sys.stdout.isatty():
            raise InvalidInput("a PDF is binary: give --output FILE, or redirect the output")
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    folder = output.resolve().parent
    if not folder.is_dir():
        raise InvalidInput(f"--output: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    out.print(f"wrote {output} ({len(data)} bytes)", markup=False)


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    return fmt


def _show_invoice(doc: docs.InvoiceDocument) -> None:
    cur = doc.currency
    print_fields(f"Invoice {doc.number}", {
        "customer": f"{doc.customer.name} ({doc.customer.external_id})",
        "kind": doc.kind, "status": doc.status, "subscription": doc.subscription,
        "issued": _iso(doc.issued_at), "due": _iso(doc.due_at), "paid": _iso(doc.paid_at),
        "period": f"{_iso(doc.period_start)} to {_iso(doc.period_end)}",
        "subtotal": _money(doc.subtotal, cur), "credit applied": _money(doc.credit_applied, cur),
        "tax": _money(doc.tax, cur), "total": _money(doc.total, cur),
        "paid amount": _money(doc.amount_paid, cur),
        "refunded": _money(doc.amount_refunded, cur), "due now": _money(doc.amount_due, cur),
        "template": doc.template_version,
    })
    print_table("Lines", ["kind", "description", "quantity", "unit price", "amount"],
                [(x.kind, x.description, x.quantity, _money(x.unit_amount, cur),
                  _money(x.amount, cur)) for x in doc.lines])
    if doc.taxes:
        print_table("Taxes", ["tax", "rate", "on", "amount"],
                    [(t.name, f"{t.rate}%", _money(t.taxable, cur), _money(t.amount, cur))
                     for t in doc.taxes])
    # References are printed whole, one per line: a table cell cut at the terminal's width
    # would cut the very order number support staff came for.
    for p in doc.payments:
        out.print(f"payment (attempt {p.attempt}): {_money(p.amount, cur)} on {_iso(p.paid_at)}, "
                  f"card {p.card}, mchOrderNo {p.mch_order_no}, payOrderId {p.pay_order_id}",
                  markup=False)
    for r in doc.refunds:
        out.print(f"{r.kind} {r.credit_note or '(no credit note)'}: {_money(r.amount, cur)}, "
                  f"{r.state} {_iso(r.at)}, mchRefundNo {r.mch_refund_no}", markup=False)


def _show_note(doc: docs.CreditNoteDocument) -> None:
    cur = doc.currency
    print_fields(f"Credit note {doc.number}", {
        "kind": doc.kind, "invoice": doc.invoice.number,
        "customer": f"{doc.customer.name} ({doc.customer.external_id})",
        "issued": _iso(doc.issued_at), "amount": _money(doc.amount, cur),
        **{f"of which {t.name} {t.rate}%": _money(t.amount, cur) for t in doc.taxes},
        "reason": doc.reason, "mchRefundNo": doc.mch_refund_no, "payOrderId": doc.pay_order_id,
        "original payment": doc.payment.mch_order_no if doc.payment else None,
        "card": doc.payment.card if doc.payment else None, "template": doc.template_version,
    })


def register(app: typer.Typer) -> None:
    invoices = typer.Typer(help="Invoices as documents: list, show, render.",
                           no_args_is_help=True)
    notes = typer.Typer(help="Credit notes (succeeded refunds and voids): list, show, render.",
                        no_args_is_help=True)

    @invoices.command("list")
    def list_invoices(customer: CustomerOpt = None, subscription: SubscriptionFilter = None,
                      status: Annotated[str | None, typer.Option(
                          help="open, paid, void or uncollectible.")] = None,
                      start: FromOpt = None, end: ToOpt = None, limit: LimitOpt = 100,
                      json_out: JsonOpt = False) -> None:
        """Invoices, newest first."""
        low, high = _date("--from", start), _date("--to", end)
        tz = state().settings().timezone
        rows = read(lambda uow: docs.list_invoices(
            uow, customer=customer, subscription=subscription, status=status, issued_from=low,
            issued_to=high, timezone=tz, limit=limit))
        if json_out:
            print_json(plain(rows))
            return
        print_table("Invoices", ["number", "customer", "subscription", "kind", "status",
                                 "issued", "total", "paid", "refunded"],
                    [(r.number, r.customer, r.subscription, r.kind, r.status,
                      _iso(r.issued_at), _money(r.total, r.currency),
                      _money(r.amount_paid, r.currency), _money(r.amount_refunded, r.currency))
                     for r in rows])

    @invoices.command("show")
    def show_invoice(number: Annotated[str, typer.Argument(help="INV-0000042")],
                     json_out: JsonOpt = False) -> None:
        """One invoice: lines, taxes, totals, payments with their gateway references, refunds."""
        doc = read(lambda uow: docs.invoice_document(uow, number))
        if json_out:
            print_json(plain(doc))
        else:
            _show_invoice(doc)

    @invoices.command("render")
    def render_invoice_cmd(number: Annotated[str, typer.Argument(help="INV-0000042")],
                           fmt: FormatOpt = "html", output: OutputOpt = None,
                           locale: LocaleOpt = None) -> None:
        """The invoice as the customer sees it, with the templates it was issued with."""
        _check_format(fmt)
        doc = read(lambda uow: docs.invoice_document(uow, number))
        merchant = merchant_from_settings(state().settings())
        write_output(render_invoice(doc, merchant, fmt, locale), output, fmt)

    @invoices.command("pay-link")
    def pay_link_cmd(number: Annotated[str, typer.Argument(help="INV-0000042")]) -> None:
        """The signed pay-now link for an open invoice (what payment-failed emails carry)."""
        config = engine_config(state().settings())
        at = state().clock().now()
        typer.echo(read(lambda uow: pay_link(uow, config, number, at)))

    @notes.command("list")
    def list_notes(customer: CustomerOpt = None, subscription: SubscriptionFilter = None,
                   invoice: Annotated[str | None, typer.Option(
                       help="Only the credit notes of this invoice (INV-...).")] = None,
                   start: FromOpt = None, end: ToOpt = None, limit: LimitOpt = 100,
                   json_out: JsonOpt = False) -> None:
        """Credit notes, newest first."""
        low, high = _date("--from", start), _date("--to", end)
        tz = state().settings().timezone
        rows = read(lambda uow: docs.list_credit_notes(
            uow, customer=customer, subscription=subscription, invoice=invoice,
            issued_from=low, issued_to=high, timezone=tz, limit=limit))
        if json_out:
            print_json(plain(rows))
            return
        print_table("Credit notes", ["number", "invoice", "customer", "kind", "issued",
                                     "amount"],
                    [(r.number, r.invoice, r.customer, r.kind, _iso(r.issued_at),
                      _money(r.amount, r.currency)) for r in rows])

    @notes.command("show")
    def show_note(number: Annotated[str, typer.Argument(help="CN-0000042")],
                  json_out: JsonOpt = False) -> None:
        """One credit note, the invoice it corrects, and the references of the money back."""
        doc = read(lambda uow: docs.credit_note_document(uow, number))
        if json_out:
            print_json(plain(doc))
        else:
            _show_note(doc)

    @notes.command("render")
    def render_note_cmd(number: Annotated[str, typer.Argument(help="CN-0000042")],
                        fmt: FormatOpt = "html", output: OutputOpt = None,
                        locale: LocaleOpt = None) -> None:
        """The credit note as the customer sees it."""
        _check_format(fmt)
        doc = read(lambda uow: docs.credit_note_document(uow, number))
        merchant = merchant_from_settings(state().settings())
        write_output(render_credit_note(doc, merchant, fmt, locale), output, fmt)

    app.add_typer(invoices, name="invoices")
    app.add_typer(notes, name="credit-notes")


__all__ = ["plain", "read", "register", "write_output"]
