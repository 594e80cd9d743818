"""``billing events``: the audit trail, newest last."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import select

from billing.cli.context import open_store
from billing.cli.output import print_json, print_table
from billing.cli.params import InvoiceFilter, SubscriptionFilter
from billing.store.models import Event
from billing.store.uow import UnitOfWork


def register(app: typer.Typer) -> None:
    @app.command("events")
    def events(
        subscription: SubscriptionFilter = None,
        invoice: InvoiceFilter = None,
        kind: Annotated[str | None, typer.Option("--type", help="Type prefix, e.g. payment.")]
        = None,
        limit: Annotated[int, typer.Option(min=1, max=100000)] = 200,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Every state change the engine recorded (the last LIMIT, oldest first)."""
        query = select(Event).order_by(Event.id.desc()).limit(limit)
        if subscription is not None:
            query = query.where(Event.subscription_id == subscription)
        if invoice is not None:
            query = query.where(Event.invoice_id == invoice)
        if kind is not None:
            query = query.where(Event.type.startswith(kind))
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                rows: list[dict[str, Any]] = [{"id": e.id, "at": e.at.isoformat(), "type": e.type,
                         "subscription": e.subscription_id, "invoice": e.invoice_id,
                         "data": e.data} for e in uow.session.scalars(query)][::-1]
        finally:
            store.close()
        if json_out:
            print_json(rows)
        else:
            print_table("Events", ["id", "at", "type", "subscription", "invoice", "data"],
                        [(r["id"], r["at"], r["type"], r["subscription"], r["invoice"],
                          ", ".join(f"{k}={v}" for k, v in dict(r["data"]).items()))
                         for r in rows])
