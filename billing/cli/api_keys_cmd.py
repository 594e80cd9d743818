"""``billing api-keys create NAME | list | revoke NAME``: keys for the merchant JSON API.

``create`` prints the key once, on stdout alone (so ``KEY=$(billing api-keys create shop)``
works); the database keeps only its SHA-256, so a lost key is revoked and replaced, not shown.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from billing.cli.context import open_store, state
from billing.cli.output import err, print_json, print_table
from billing.services.api_keys import create_api_key, list_api_keys, revoke_api_key

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
NameArg = Annotated[str, typer.Argument(help="A name for the key: who or what uses it.")]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="API keys for the JSON API (docs/api.md).", no_args_is_help=True)

    @group.command("create")
    def create(name: NameArg, json_out: JsonOpt = False) -> None:
        """Make a key and print it once: store it now, it can't be shown again."""
        store = open_store()
        try:
            view, secret = create_api_key(store, name, state().clock().now())
        finally:
            store.close()
        if json_out:
            print_json({**asdict(view), "key": secret})
            return
        print(secret)
        err.print(f"API key {view.name!r} created; this is the only time it is shown. "
                  "Send it as `Authorization: Bearer <key>`.", markup=False)

    @group.command("list")
    def list_(json_out: JsonOpt = False) -> None:
        """Every key by name and the first characters of its secret (never the whole)."""
        store = open_store(reading=True)
        try:
            views = list_api_keys(store)
        finally:
            store.close()
        if json_out:
            print_json([asdict(v) for v in views])
            return
        print_table("API keys", ["name", "prefix", "created", "last used", "revoked"],
                    [(v.name, v.prefix + "...", v.created_at, v.last_used_at or "",
                      v.revoked_at or "") for v in views])

    @group.command("revoke")
    def revoke(name: NameArg, json_out: JsonOpt = False) -> None:
        """Refuse the key from now on (a 401 on its next request)."""
        store = open_store()
        try:
            view = revoke_api_key(store, name, state().clock().now())
        finally:
            store.close()
        if json_out:
            print_json(asdict(view))
        else:
            err.print(f"API key {view.name!r} revoked at {view.revoked_at}", markup=False)

    app.add_typer(group, name="api-keys")
