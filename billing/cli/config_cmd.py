"""``billing config show``: the effective settings, masked, with where each came from."""

from __future__ import annotations

from typing import Annotated

import typer

from billing.cli.context import state
from billing.cli.output import print_json, print_table
from billing.settings import describe


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Inspect settings.", no_args_is_help=True)

    @group.command("show")
    def show(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Print every setting (secrets masked) and its source: default, file, or environment."""
        st = state()
        views = describe(st.settings(), set(st.overrides))
        if json_out:
            print_json([v.__dict__ for v in views])
            return
        print_table("Effective settings", ["setting", "environment", "value", "source"],
                    [(v.name, v.env, v.value, v.source) for v in views])

    app.add_typer(group, name="config")
