"""``billing explain INVOICE``: why an invoice is for this amount and in this state."""

from __future__ import annotations

from typing import Annotated

import typer

from billing.cli.documents_cmd import plain, read
from billing.cli.output import out, print_json
from billing.services.explain import Explanation, explain_invoice


def _print(e: Explanation) -> None:
    out.print(f"{e.invoice} for {e.customer}: {e.status}", markup=False)
    out.print("\nWhy this amount", markup=False)
    for step in e.amount:
        out.print(f"  {step.topic:<7} {step.text}", markup=False)
    out.print("\nWhat happened", markup=False)
    for step in e.history:
        when = step.at.isoformat() if step.at else ""
        out.print(f"  {when:<25} {step.topic:<7} {step.text}", markup=False)
    out.print(f"\nNow: {e.verdict}", markup=False)


def register(app: typer.Typer) -> None:
    @app.command("explain")
    def explain(number: Annotated[str, typer.Argument(help="The invoice, INV-0000042.")],
                json_out: Annotated[bool, typer.Option("--json", help="Machine-readable.")]
                = False) -> None:
        """Why INVOICE is for this amount and in this state: plan, period, lines, credits,
        taxes, every charge attempt and notify, dunning emails, refunds."""
        explanation = read(lambda uow: explain_invoice(uow, number))
        if json_out:
            print_json(plain(explanation))
        else:
            _print(explanation)
