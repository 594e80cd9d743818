"""``billing plans validate | list | diff | apply``: the YAML catalog and its stored versions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from billing.catalog.loader import Catalog, load_catalog
from billing.cli.context import open_store, state
from billing.cli.output import out, print_json, print_table
from billing.domain.money import Money
from billing.domain.timeutil import format_duration
from billing.services.catalog import CatalogDiff, ChangeKind, apply_catalog, diff_catalog
from billing.store.models import DunningPolicyRow
from billing.store.models import Plan as PlanRow
from billing.store.uow import UnitOfWork

DirArg = Annotated[Path | None, typer.Argument(help="Plan folder (default: BILLING_PLANS_DIR).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _catalog(directory: Path | None) -> Catalog:
    return load_catalog(directory or state().settings().plans_dir)


def _show_diff(diff: CatalogDiff, json_out: bool, title: str) -> None:
    if json_out:
        print_json({
            "plans": [{"code": c.code, "change": c.kind.value, "version": c.version,
                       "details": c.changes, "subscriptions": c.subscriptions,
                       "effect": c.effect} for c in diff.plans],
            "dunning_policies": {k: v.value for k, v in diff.policies.items()},
            "taxes": diff.taxes,
        })
        return
    print_table(title, ["plan", "change", "version", "details", "subscriptions touched"],
                [(c.code, c.kind.value, f"v{c.version}", "; ".join(c.changes),
                  c.effect or (str(c.subscriptions) if c.kind is not ChangeKind.NEW else ""))
                 for c in diff.plans])
    for name, kind in diff.policies.items():
        out.print(f"dunning policy {name}: {kind.value}")
    for province, change in diff.taxes.items():
        out.print(f"taxes in {province}: {change}", markup=False)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Validate, inspect and store the plan catalog.", no_args_is_help=True)

    @group.command("validate")
    def validate(directory: DirArg = None, json_out: JsonOpt = False) -> None:
        """Check every plan file; print each mistake as file:line: field: reason (exit 2)."""
        catalog = _catalog(directory)
        if json_out:
            print_json({"plans": sorted(catalog.plans), "valid": True,
                        "dunning_policies": sorted(catalog.dunning_policies)})
            return
        out.print(f"ok: {len(catalog.plans)} plan(s), "
                  f"{len(catalog.dunning_policies)} dunning polic(ies) valid")

    @group.command("diff")
    def diff(directory: DirArg = None, json_out: JsonOpt = False) -> None:
        """Show what `apply` would change against the stored catalog; stores nothing."""
        catalog = _catalog(directory)
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                _show_diff(diff_catalog(uow, catalog), json_out, "Catalog changes (not applied)")
        finally:
            store.close()

    @group.command("apply")
    def apply(directory: DirArg = None, json_out: JsonOpt = False) -> None:
        """Store the catalog: new plans, new versions when price or interval changed."""
        catalog = _catalog(directory)
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                result = apply_catalog(uow, state().clock(), catalog)
            _show_diff(result, json_out, "Catalog applied")
        finally:
            store.close()

    @group.command("list")
    def list_(json_out: JsonOpt = False) -> None:
        """The stored plans with their current version and terms, retries and dunning."""
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                policies = {p.name: p.definition
                            for p in uow.session.scalars(select(DunningPolicyRow))}
                data = [_plan_view(row, policies) for row in
                        uow.session.scalars(select(PlanRow).order_by(PlanRow.code))]
        finally:
            store.close()
        if json_out:
            print_json(data)
        elif not data:
            out.print("no plans stored yet; run `billing plans apply`")
        else:
            columns = [c for c in data[0] if c not in TABLE_HIDES]
            print_table("Plans", [c.replace("_", " ") for c in columns],
                        [[_cell(d[c]) for c in columns] for d in data])

    app.add_typer(group, name="plans")


TABLE_HIDES = ("dunning", "migration")
"""Fields only ``--json`` shows, to keep the table readable: the policy's steps don't fit a cell,
and how subscribers move to a new version matters only when the catalog changes."""


def _plan_view(row: PlanRow, policies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A stored plan as people and scripts read it: what a subscriber pays and, when a charge
    fails, when it is retried and how dunning escalates (the policy is shared, so it is looked up
    by name; ``None`` if the catalog stored none under that name)."""
    cur = next(v for v in row.versions if v.version == row.current_version)
    definition = policies.get(row.dunning_policy)
    return {
        "code": row.code, "name": row.name, "version": row.current_version,
        "price": Money(cur.price, cur.currency).format(),
        "interval": f"{cur.interval_count} {cur.interval_unit}",
        "trial_days": row.trial_days,
        "setup_fee": Money(row.setup_fee, row.currency).format()
        if row.setup_fee is not None else None,
        "retry_schedule": [_duration(s) for s in row.retry_schedule],
        "dunning_policy": row.dunning_policy,
        "dunning": _policy_view(definition) if definition is not None else None,
        "migration": row.migration, "archived": row.archived,
    }


def _policy_view(definition: dict[str, Any]) -> dict[str, Any]:
    """A stored policy definition (seconds) written back as the YAML has it (durations)."""
    return {
        "steps": [{"after": _duration(s["after"]), "email": s["email"]}
                  for s in definition["steps"]],
        "final_action": {"after": _duration(definition["final_after"]),
                         "action": definition["final_action"]},
    }


def _duration(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))


def _cell(value: Any) -> Any:
    return ", ".join(value) if isinstance(value, list) else value

