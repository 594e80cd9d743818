"""``billing customers add | list | show``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from billing.cli.context import open_store, state
from billing.cli.output import print_fields, print_json, print_table
from billing.cli.params import Offset
from billing.services.customers import CustomerView, add_customer, find_customer, list_customers
from billing.store.uow import UnitOfWork

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Manage customers.", no_args_is_help=True)

    @group.command("add")
    def add(
        external_id: Annotated[str, typer.Argument(help="Your id for the customer.")],
        email: Annotated[str, typer.Option(help="Where invoices and notices go.")],
        name: Annotated[str, typer.Option(help="Name printed on invoices.")],
        locale: Annotated[str, typer.Option(help="en or fr.")] = "en",
        timezone: Annotated[str | None, typer.Option(help="IANA zone; default BILLING_TIMEZONE.")]
        = None,
        province: Annotated[str | None, typer.Option(
            help="Two-letter province code (QC, ON...): which taxes of the catalog apply.")]
        = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Add a customer."""
        st = state()
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                view = add_customer(uow, st.clock(), external_id=external_id, email=email,
                                    name=name, locale=locale,
                                    timezone=timezone or st.settings().timezone,
                                    province=province)
        finally:
            store.close()
        if json_out:
            print_json(asdict(view))
        else:
            print_fields(f"Customer {view.external_id} added", asdict(view))

    @group.command("list")
    def list_(
        limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
        offset: Offset = 0,
        json_out: JsonOpt = False,
    ) -> None:
        """List customers, oldest first."""
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                views = list_customers(uow, limit=limit, offset=offset)
        finally:
            store.close()
        if json_out:
            print_json([asdict(v) for v in views])
        else:
            print_table("Customers", ["id", "external id", "name", "email", "locale", "timezone"],
                        [(v.id, v.external_id, v.name, v.email, v.locale, v.timezone)
                         for v in views])

    @group.command("show")
    def show(
        customer: Annotated[str, typer.Argument(help="Your id, or #N for the engine's id.")],
        json_out: JsonOpt = False,
    ) -> None:
        """Show one customer and their cards."""
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                row = find_customer(uow, customer)
                view = asdict(CustomerView.of(row))
                view["cards"] = [
                    {"card_id": c.gateway_card_id, "status": c.status, "number": c.masked_number,
                     "type": c.card_type, "expiry": c.expiry, "holder": c.holder}
                    for c in row.cards
                ]
        finally:
            store.close()
        if json_out:
            print_json(view)
        else:
            cards = view.pop("cards")
            view["cards"] = ", ".join(f"{c['number'] or c['card_id']} ({c['status']})"
                                      for c in cards) or "none"
            print_fields(f"Customer {customer}", view)

    app.add_typer(group, name="customers")
