"""``billing db upgrade | downgrade | current``: the schema, through Alembic; and
``billing db accept-restore``: trust a database restored from a backup, on purpose."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError

from billing.cli.context import open_store, state
from billing.cli.output import out
from billing.errors import ConfigError, InvalidInput
from billing.services import watermark
from billing.settings import mask_url
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

    @group.command("accept-restore")
    def accept_restore(
        yes: Annotated[bool, typer.Option("--yes", help="Confirm without a prompt.")] = False,
    ) -> None:
        """Trust this database as it is after a restore: move the high-water mark back to it."""
        st = state()
        settings = st.settings()
        store = open_store()
        try:
            check = watermark.check_restore(store, settings.state_dir)
            if not check.gaps:
                out.print(f"nothing to accept: this database is not behind its mark "
                          f"({check.path})", highlight=False)
                return
            out.print(f"this database holds {check.database.describe()}; the mark in "
                      f"{check.path} says {check.mark.describe() if check.mark else '?'}.\n"
                      "Charges and refunds made after the backup are missing from it: the engine "
                      "may charge those invoices again. Check them at the gateway (`billing "
                      "charges query ORDER`) before you go on.", highlight=False)
            _confirm(yes)
            accepted = watermark.accept_restore(store, settings.state_dir,
                                                at=st.clock().now(),
                                                database=mask_url(settings.database_url))
            out.print(f"restore accepted: the mark is now {accepted.describe()}", highlight=False)
        finally:
            store.close()

    app.add_typer(group, name="db")


def _confirm(yes: bool) -> None:
    """Ask on a terminal; without one, only ``--yes`` confirms (a script must say so)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InvalidInput("not confirmed: pass --yes to accept the restore")
    if not typer.confirm("Accept this database as it is?", default=False):
        raise InvalidInput("not confirmed: nothing changed")
