"""``billing outbox list | send``: see queued emails, and send what is due now."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict
from typing import Annotated

import typer

from billing.cli.context import open_store, state
from billing.cli.output import print_json, print_table
from billing.documents.merchant import merchant_from_settings
from billing.errors import InvalidInput
from billing.mail import transport_from_settings
from billing.services.outbox import (
    OutboxView,
    Status,
    document_attacher,
    list_messages,
    send_pending,
)
from billing.store.uow import UnitOfWork

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def status_label(view: OutboxView) -> str:
    """What a person wants to know at a glance: sent how, or still trying and how often."""
    if view.status == "sent":
        return "sent to file" if view.transport == "file" else f"sent via {view.transport}"
    if view.status == "failing":
        plural = "s" if view.attempts != 1 else ""
        return f"failing ({view.attempts} attempt{plural})"
    return "pending"


def _status(pending: bool, sent: bool, all_: bool) -> Status:
    if pending + sent + all_ > 1:
        raise InvalidInput("choose one of --pending, --sent, --all")
    return "pending" if pending else "sent" if sent else "all"


def worker_name() -> str:
    """Who holds a lease, for an operator reading the table: host and process."""
    return f"cli-{socket.gethostname()}-{os.getpid()}"[:64]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Emails waiting to be sent, and sent.", no_args_is_help=True)

    @group.command("list")
    def list_(
        pending: Annotated[bool, typer.Option("--pending", help="Only unsent emails.")] = False,
        sent: Annotated[bool, typer.Option("--sent", help="Only sent emails.")] = False,
        all_: Annotated[bool, typer.Option("--all", help="Every email (default).")] = False,
        limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
        json_out: JsonOpt = False,
    ) -> None:
        """List emails in the outbox, newest first."""
        status = _status(pending, sent, all_)
        store = open_store()
        try:
            with UnitOfWork(store) as uow:
                views = list_messages(uow.session, status=status, limit=limit)
        finally:
            store.close()
        if json_out:
            print_json([{**asdict(v), "label": status_label(v)} for v in views])
            return
        print_table("Outbox", ["id", "created (UTC)", "template", "to", "subject", "status"],
                    [(v.id, f"{v.created_at:%Y-%m-%d %H:%M}", v.template, v.to, v.subject,
                      status_label(v)) for v in views])

    @group.command("send")
    def send(
        limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many.")] = 100,
        json_out: JsonOpt = False,
    ) -> None:
        """Send the emails that are due now (one pass), by SMTP or as .eml files."""
        st = state()
        settings = st.settings()
        transport = transport_from_settings(settings)
        store = open_store()
        try:
            attach = document_attacher(store, merchant_from_settings(settings))
            summary = send_pending(store, transport, st.clock(), worker=worker_name(),
                                   sender=settings.merchant_email, limit=limit, attach=attach)
        finally:
            store.close()
        if json_out:
            print_json(asdict(summary))
            return
        where = f"to {settings.outbox_dir}" if settings.smtp_url is None else "via SMTP"
        print(f"sent {summary.sent} {where}, failed {summary.failed}, "
              f"still due {summary.remaining}")

    app.add_typer(group, name="outbox")
