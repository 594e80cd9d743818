"""``billing db upgrade | downgrade | current``: the schema, through Alembic."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError

from billing.cli.context import open_store
from billing.cli.output import out
from billing.errors import ConfigError
from billing.store import migrate


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Create and migrate the database schema.", no_args_is_help=True)

    @group.command("upgrade")
    def upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
        """Bring the schema up to REVISION (default: the newest)."""
        store = open_store(require_schema=False)
        try:
            migrate.upgrade(store.engine, revision)
            out.print(f"database at revision {migrate.current_revision(store.engine)}")
        except OperationalError as exc:
            raise ConfigError(f"cannot reach the database: {exc.orig}") from None
        finally:
            store.close()

    @group.command("downgrade")
    def downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1 or base")]) -> None:
        """Step the schema back to REVISION; `base` drops every table (and its data)."""
        store = open_store(require_schema=False)
        try:
            migrate.downgrade(store.engine, revision)
            out.print(f"database at revision {migrate.current_revision(store.engine) or 'base'}")
        finally:
            store.close()

    @group.command("current")
    def current() -> None:
        """Print the schema revision of the database and of the code."""
        store = open_store(require_schema=False)
        try:
            out.print(f"database: {migrate.current_revision(store.engine) or 'empty'}; "
                      f"code: {migrate.head_revision(store.engine)}")
        finally:
            store.close()

    app.add_typer(group, name="db")
