"""``billing subscriptions create | import | list | show | cancel | reactivate | pause | resume |
change-plan``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from billing.bootstrap import engine_config
from billing.cli.context import open_store, state
from billing.cli.import_csv import read_import_csv
from billing.cli.output import out, print_fields, print_json, print_table
from billing.cli.params import SubscriptionId, bounded_int
from billing.domain.money import Money
from billing.domain.plans import MAX_QUANTITY
from billing.domain.timeutil import parse_instant
from billing.services import imports
from billing.services import subscriptions as subs
from billing.store.models import Invoice
from billing.store.uow import UnitOfWork

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
QuantityOpt = Annotated[int, typer.Option(parser=bounded_int("--quantity", 1, MAX_QUANTITY),
                                          metavar="N", help="Seats or units.")]


def _show(view: dict[str, Any], json_out: bool, title: str) -> None:
    if json_out:
        print_json(view)
    else:
        print_fields(title, {k: (" to ".join(str(x) for x in v) if isinstance(v, list) else v)
                             for k, v in view.items()})


def _invoices(uow: UnitOfWork, sub_id: int) -> list[dict[str, Any]]:
    rows = uow.session.scalars(select(Invoice).where(Invoice.subscription_id == sub_id)
                               .order_by(Invoice.id))
    return [{"number": i.number, "kind": i.kind, "status": i.status,
             "total": Money(i.total, i.currency).format(),
             "period_start": i.period_start.isoformat(), "attempts": i.attempt_count}
            for i in rows]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Manage subscriptions.", no_args_is_help=True)

    def run(action: Any, json_out: bool, title: str, **kwargs: Any) -> None:
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                view = action(uow, state().clock(), **kwargs)
        finally:
            store.close()
        _show(view if isinstance(view, dict) else asdict(view), json_out, title)

    @group.command("create")
    def create(
        customer: Annotated[str, typer.Argument(help="Customer id (or #N).")],
        plan: Annotated[str, typer.Argument(help="Plan code.")],
        card: Annotated[str | None, typer.Option(help="Card id; default: newest active card.")]
        = None,
        start: Annotated[str | None, typer.Option(
            help="ISO instant; default now. A past start bills only the current period.")]
        = None,
        backfill: Annotated[bool, typer.Option(
            "--backfill", help="With a past --start: bill the earlier periods too (at most 24).")]
        = False,
        trial_days: Annotated[int | None, typer.Option(
            parser=bounded_int("--trial-days", 0, 730), metavar="DAYS",
            help="Override the plan's trial.")] = None,
        quantity: QuantityOpt = 1,
        json_out: JsonOpt = False,
    ) -> None:
        """Subscribe CUSTOMER to PLAN; the current period is invoiced at once unless in trial."""
        begin: datetime | None = parse_instant(start) if start else None
        run(subs.create_subscription, json_out, "Subscription created", customer=customer,
            plan=plan, card=card, start=begin, trial_days=trial_days, quantity=quantity,
            backfill=backfill)

    @group.command("import")
    def import_(
        file: Annotated[Path, typer.Argument(help="CSV: customer, plan, paid_through "
                                             "[, quantity, card, external_ref].")],
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; change "
                                              "nothing.")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Bring subscribers from another system, each paid up to a date; all rows or none.

        See docs/operations.md, "Migrating subscribers".
        """
        rows, problems = read_import_csv(file)
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                report = imports.import_subscriptions(uow, state().clock(), rows,
                                                      source=str(file), dry_run=dry_run,
                                                      problems=problems)
        finally:
            store.close()
        if json_out:
            print_json(asdict(report))
            return
        print_table(f"Import of {file}" + (" (dry run)" if dry_run else ""),
                    ["line", "customer", "plan", "outcome", "id", "note"],
                    [(r.line, r.customer, r.plan, r.outcome, r.subscription, r.note)
                     for r in report.rows])
        verb = ("would import", "would skip") if dry_run else ("imported", "skipped")
        out.print(f"{verb[0]} {report.imported}, {verb[1]} {report.skipped} (already imported)"
                  + ("; nothing was changed" if dry_run else ""))

    @group.command("list")
    def list_(
        customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
        status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
        json_out: JsonOpt = False,
    ) -> None:
        """List subscriptions."""
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                views = subs.list_subscriptions(uow, customer=customer, status=status,
                                                limit=limit)
        finally:
            store.close()
        if json_out:
            print_json(views)
            return
        print_table("Subscriptions", ["id", "customer", "plan", "status", "price", "next renewal"],
                    [(v["id"], v["customer"], f"{v['plan']} v{v['version']}", v["status"],
                      v["price"], v["next_renewal"]) for v in views])

    @group.command("show")
    def show(sub_id: SubscriptionId, json_out: JsonOpt = False) -> None:
        """One subscription and its invoices."""
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                view = subs.describe(uow, subs.get_subscription(uow, sub_id))
                invoices = _invoices(uow, sub_id)
        finally:
            store.close()
        if json_out:
            print_json({**view, "invoices": invoices})
            return
        _show(view, False, f"Subscription {sub_id}")
        print_table("Invoices", ["number", "kind", "status", "total", "period start", "attempts"],
                    [list(i.values()) for i in invoices])

    @group.command("cancel")
    def cancel(
        sub_id: SubscriptionId,
        at_period_end: Annotated[bool, typer.Option("--at-period-end",
                                                    help="Keep it until the period ends.")]
        = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Cancel now, or at the end of the current period."""
        run(subs.cancel, json_out, "Subscription canceled" if not at_period_end
            else "Cancellation scheduled", sub_id=sub_id, at_period_end=at_period_end,
            policy=state().settings().lifecycle(), config=engine_config(state().settings()))

    @group.command("reactivate")
    def reactivate(sub_id: SubscriptionId, json_out: JsonOpt = False) -> None:
        """Undo a cancel-at-period-end."""
        run(subs.reactivate, json_out, "Subscription reactivated", sub_id=sub_id)

    @group.command("pause")
    def pause(sub_id: SubscriptionId, json_out: JsonOpt = False) -> None:
        """Stop issuing invoices until resumed."""
        run(subs.pause, json_out, "Subscription paused", sub_id=sub_id,
            policy=state().settings().lifecycle())

    @group.command("resume")
    def resume(sub_id: SubscriptionId, json_out: JsonOpt = False) -> None:
        """Resume billing (re-anchors on today if the paid period has ended)."""
        run(subs.resume, json_out, "Subscription resumed", sub_id=sub_id,
            policy=state().settings().lifecycle())

    @group.command("change-plan")
    def change_plan(
        sub_id: SubscriptionId,
        plan: Annotated[str | None, typer.Option(help="New plan code.")] = None,
        quantity: Annotated[int | None, typer.Option(
            parser=bounded_int("--quantity", 1, MAX_QUANTITY), metavar="N",
            help="New quantity.")] = None,
        when: Annotated[str, typer.Option(help="auto (upgrade now, downgrade at period end), "
                                          "now, or period_end.")] = "auto",
        preview: Annotated[bool, typer.Option("--preview", help="Show amounts; change nothing.")]
        = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Change plan or quantity, with exact proration for changes that apply now."""
        if when not in ("auto", "now", "period_end"):
            raise typer.BadParameter("--when must be auto, now or period_end")
        if plan is None and quantity is None:
            raise typer.BadParameter("give --plan and/or --quantity")
        run(subs.change_plan, json_out, "Preview (nothing changed)" if preview else "Plan changed",
            sub_id=sub_id, plan=plan, quantity=quantity, when=when, preview=preview,
            config=engine_config(state().settings()))
        if preview and not json_out:
            out.print("nothing was changed")

    app.add_typer(group, name="subscriptions")
