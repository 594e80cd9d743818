"""Cards and money operations: ``billing cards add | add-direct | show``, ``billing charges
query``, ``billing refund``, ``billing void``.

Card numbers and CVVs are read from a hidden prompt or from stdin, never from the command line
(where shell history and ``ps`` would keep them), and are handed to the gateway as ``SecretStr``.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from decimal import Decimal
from typing import Annotated

import typer
from pydantic import SecretStr
from sqlalchemy import select

from billing.cli.context import runtime
from billing.cli.output import err, error_line, out, print_fields, print_json, print_table
from billing.domain.money import Money
from billing.domain.payments import IN_FLIGHT, AttemptState
from billing.errors import InvalidInput, NotFound
from billing.gateway import CardInfo, GatewayReply
from billing.services import cards, refunds
from billing.store.models import Invoice
from billing.store.uow import UnitOfWork

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
PCI_WARNING = ("warning: entering card numbers here makes this system part of your PCI DSS "
               "scope; prefer `billing cards add` (the gateway's hosted page).")


def _read_secret(label: str) -> SecretStr:
    if sys.stdin.isatty():
        return SecretStr(typer.prompt(label, hide_input=True).strip())
    line = sys.stdin.readline()
    if not line:
        raise InvalidInput(f"expected the {label.lower()} on stdin")
    return SecretStr(line.strip())


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Saved cards (token references only).", no_args_is_help=True)

    @group.command("add")
    def add(customer: Annotated[str, typer.Argument(help="Customer id (or #N).")],
            json_out: JsonOpt = False) -> None:
        """Open the gateway's hosted card page for CUSTOMER and print its URL."""
        with runtime() as rt:
            view, url = cards.start_card_setup(rt.deps, customer)
        if json_out:
            print_json({**asdict(view), "redirect_url": url})
        else:
            out.print(f"card {view.card_id} pending; send the customer to:\n{url}")

    @group.command("add-direct")
    def add_direct(
        customer: Annotated[str, typer.Argument(help="Customer id (or #N).")],
        holder: Annotated[str, typer.Option(help="Name on the card.")],
        expiry: Annotated[str, typer.Option(help="MMYY, e.g. 0727.")],
        json_out: JsonOpt = False,
    ) -> None:
        """Vault a card directly: number and CVV from a hidden prompt or stdin (one per line)."""
        err.print(PCI_WARNING)
        number, cvv = _read_secret("Card number"), _read_secret("CVV")
        with runtime() as rt:
            view = cards.add_direct(rt.deps, customer, number=number, cvv=cvv, expiry=expiry,
                                    holder=holder)
        if json_out:
            print_json(asdict(view))
        else:
            print_fields(f"Card {view.card_id} saved", asdict(view))

    @group.command("show")
    def show(customer: Annotated[str, typer.Argument(help="Customer id (or #N).")],
             json_out: JsonOpt = False) -> None:
        """The customer's cards, refreshed from the gateway with cc_querycard."""
        with runtime() as rt:
            views = cards.list_cards(rt.deps, customer)
            live = {v.card_id: rt.deps.gateway.cc_querycard(card_id=v.card_id) for v in views
                    if v.status != "removed"}
        rows = [{**asdict(v), "gateway": _gateway_view(live.get(v.card_id))} for v in views]
        if json_out:
            print_json(rows)
        else:
            print_table(f"Cards of {customer}", list(rows[0]) if rows else ["card_id"],
                        [list(r.values()) for r in rows])

    app.add_typer(group, name="cards")

    charges = typer.Typer(help="Look charges up at the gateway.", no_args_is_help=True)

    @charges.command("query")
    def query(order: Annotated[str, typer.Argument(help="mchOrderNo of the charge.")],
              json_out: JsonOpt = False) -> None:
        """Ask the gateway (cc_query) what it knows about ORDER."""
        with runtime() as rt:
            reply = rt.deps.gateway.cc_query(mch_order_no=order)
        data = reply.data.model_dump(exclude_none=True) if reply.data else {}
        if json_out:
            print_json({"retCode": reply.ret_code, "retMsg": reply.ret_msg, "order": data})
        elif reply.order_not_found:
            raise NotFound(f"the gateway has no order {order!r}")
        else:
            print_fields(f"Order {order}: {reply.ret_code} {reply.ret_msg}".strip(), data)

    app.add_typer(charges, name="charges")

    def _money(invoice_number: str, amount: str | None) -> int | None:
        if amount is None:
            return None
        with runtime() as rt, UnitOfWork(rt.deps.store) as uow:
            invoice = uow.session.scalar(select(Invoice).where(Invoice.number == invoice_number))
            currency = invoice.currency if invoice else "CAD"
        try:
            return Money.parse(str(Decimal(amount)), currency).amount
        except ArithmeticError:
            raise InvalidInput(f"not an amount: {amount!r}") from None

    @app.command("refund")
    def refund(
        invoice: Annotated[str, typer.Argument(help="Invoice number, e.g. INV-0000042.")],
        amount: Annotated[str | None, typer.Option(help="e.g. 10.00; default: all refundable.")]
        = None,
        reason: Annotated[str | None, typer.Option(help="Kept on the credit note.")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Refund a paid invoice in full or in part; recorded as a credit note."""
        cents = _money(invoice, amount)
        with runtime() as rt:
            view = refunds.refund_invoice(rt.deps, invoice, amount=cents, reason=reason)
        _print_refund(view, json_out)

    @app.command("void")
    def void(invoice: Annotated[str, typer.Argument(help="Invoice number.")],
             json_out: JsonOpt = False) -> None:
        """Void today's payment of an invoice in full (the gateway allows it the same day only)."""
        with runtime() as rt:
            view = refunds.refund_invoice(rt.deps, invoice, void=True)
        _print_refund(view, json_out)


def _gateway_view(reply: GatewayReply[CardInfo] | None) -> str:
    """What the gateway says of a card today: its masked number, or why it can't say."""
    if reply is None:
        return ""
    if reply.data is not None and reply.data.card_num:
        return f"{reply.data.card_num} exp {reply.data.expiry_date or '?'}"
    return reply.ret_msg


def _print_refund(view: refunds.RefundView, json_out: bool) -> None:
    """Print the refund as stored, then say on stderr what its state means for the operator.

    A script checks the exit code, not the words: a refund that moved no money must not look
    like one that did. ``failed`` (the gateway refused) and ``failed_not_sent`` (it never got
    the request) exit 1; an outcome not known yet exits 0, because the money may well have moved
    and reconciliation settles it (sending it again by hand could refund twice).
    """
    if json_out:
        print_json(asdict(view))
    else:
        print_fields(f"{view.kind.capitalize()} {view.state}", asdict(view))
    state = AttemptState(view.state)
    if state is AttemptState.FAILED:
        error_line(f"the gateway refused the {view.kind} of {view.invoice}: "
                   f"{view.reason or 'no reason given'}")
        raise typer.Exit(1)
    if state is AttemptState.FAILED_NOT_SENT:
        error_line(f"the {view.kind} of {view.invoice} was not sent, so nothing was refunded: "
                   f"{view.reason or 'no reason given'}")
        raise typer.Exit(1)
    if state in IN_FLIGHT:
        err.print(f"the {view.kind} of {view.invoice} is {view.state}: its outcome is not known "
                  "yet and reconciliation (the daemon, or `billing run-once`) will resolve it; "
                  "do not send it again", markup=False)
