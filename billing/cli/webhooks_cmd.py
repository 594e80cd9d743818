"""``billing webhooks add | list | remove | retry | deliveries | send | types``.

``add`` prints the endpoint's signing secret in full, once; ``list`` shows it masked, since a
terminal transcript or a CI log must not be enough to forge events.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from billing.cli.context import open_store, state
from billing.cli.outbox_cmd import worker_name
from billing.cli.output import print_fields, print_json, print_table
from billing.errors import InvalidInput
from billing.services.webhooks import (
    DeliveryStatus,
    add_endpoint,
    deliver_due,
    list_deliveries,
    list_endpoints,
    remove_endpoint,
    retry_deliveries,
)
from billing.webhooks.event_types import MAPPING, PUBLIC_TYPES

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def split_types(text: str | None) -> list[str]:
    return [] if text is None else [t for t in (p.strip() for p in text.split(",")) if t]


def _delivery_status(pending: bool, failed: bool, delivered: bool) -> DeliveryStatus | None:
    if pending + failed + delivered > 1:
        raise InvalidInput("choose one of --pending, --failed, --delivered")
    return "pending" if pending else "failed" if failed else "delivered" if delivered else None


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Signed event POSTs to your app.", no_args_is_help=True)

    @group.command("add")
    def add(
        url: Annotated[str, typer.Argument(help="http(s) URL of your app's webhook receiver.")],
        events: Annotated[str | None, typer.Option(
            "--events", help="Comma-separated event types (default: every type; see "
            "`billing webhooks types`).")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Register an endpoint and print its signing secret (shown only this once)."""
        store = open_store()
        try:
            view = add_endpoint(store, state().clock().now(), url, split_types(events))
        finally:
            store.close()
        if json_out:
            print_json(asdict(view))
            return
        print_fields(f"Webhook endpoint {view.id} added", {
            "url": view.url, "events": ", ".join(view.events) or "all", "secret": view.secret})
        print("Keep the secret: your app verifies signatures with it; `list` shows it masked.")

    @group.command("list")
    def list_(json_out: JsonOpt = False) -> None:
        """List endpoints, secrets masked."""
        store = open_store(reading=True)
        try:
            views = list_endpoints(store)
        finally:
            store.close()
        if json_out:
            print_json([asdict(v) for v in views])
            return
        print_table("Webhook endpoints", ["id", "url", "events", "secret", "created (UTC)"],
                    [(v.id, v.url, ", ".join(v.events) or "all", v.secret,
                      f"{v.created_at:%Y-%m-%d %H:%M}") for v in views])

    @group.command("remove")
    def remove(endpoint_id: Annotated[int, typer.Argument(help="Endpoint id.")]) -> None:
        """Stop sending to an endpoint; its undelivered deliveries are dropped."""
        store = open_store()
        try:
            view = remove_endpoint(store, endpoint_id)
        finally:
            store.close()
        print(f"removed webhook endpoint {view.id} ({view.url})")

    @group.command("retry")
    def retry(
        delivery: Annotated[int | None, typer.Option(
            "--delivery", help="Queue this delivery again now.")] = None,
        failed: Annotated[bool, typer.Option(
            "--failed", help="Queue every delivery given up on again now.")] = False,
    ) -> None:
        """Queue deliveries again, with a fresh three days of retries."""
        store = open_store()
        try:
            count = retry_deliveries(store, state().clock().now(), delivery_id=delivery,
                                     failed=failed)
        finally:
            store.close()
        print(f"queued {count} deliver{'y' if count == 1 else 'ies'} again")

    @group.command("deliveries")
    def deliveries(
        pending: Annotated[bool, typer.Option("--pending", help="Only still trying.")] = False,
        failed: Annotated[bool, typer.Option("--failed", help="Only given up on.")] = False,
        delivered: Annotated[bool, typer.Option("--delivered", help="Only delivered.")] = False,
        endpoint: Annotated[int | None, typer.Option("--endpoint", help="Only to this one.")]
        = None,
        limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
        json_out: JsonOpt = False,
    ) -> None:
        """List deliveries, newest first."""
        status = _delivery_status(pending, failed, delivered)
        store = open_store(reading=True)
        try:
            views = list_deliveries(store, status=status, endpoint_id=endpoint, limit=limit)
        finally:
            store.close()
        if json_out:
            print_json([asdict(v) for v in views])
            return
        print_table("Webhook deliveries",
                    ["id", "event", "type", "endpoint", "status", "tries", "last"],
                    [(v.id, v.event, v.type, v.endpoint_id, v.status, v.attempts,
                      v.last_error or v.last_status) for v in views])

    @group.command("send")
    def send(
        limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
        json_out: JsonOpt = False,
    ) -> None:
        """Send the deliveries that are due now (one pass of the webhooks tick)."""
        store = open_store()
        try:
            summary = deliver_due(store, state().clock(), worker=worker_name(), limit=limit)
        finally:
            store.close()
        if json_out:
            print_json(asdict(summary))
            return
        print(f"delivered {summary.delivered}, retrying {summary.retrying}, gave up "
              f"{summary.gave_up}, still due {summary.remaining}")

    @group.command("types")
    def types(json_out: JsonOpt = False) -> None:
        """The event types an endpoint can ask for."""
        if json_out:
            print_json(list(PUBLIC_TYPES))
            return
        print_table("Webhook event types", ["type", "internal event", "means"],
                    [(r.public, f"{r.internal} {r.when}".strip(), r.meaning) for r in MAPPING])

    app.add_typer(group, name="webhooks")
