"""Printing for people (rich tables) and for scripts (``--json``), and one-line errors (card
numbers masked)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from billing.gateway.masking import redact_pans

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Machine output: plain JSON on stdout, nothing else."""
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


def print_fields(title: str, fields: dict[str, Any]) -> None:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in fields.items():
        table.add_row(key, "" if value is None else str(value))
    out.print(table)


def error_line(message: str) -> None:
    """Print ``error: message`` on stderr, with any card number in it masked.

    Every error the CLI prints comes through here, and errors quote what the user typed or what a
    gateway or driver said: a card number pasted where a customer id goes must not be echoed back
    to the terminal, a log collector or a CI transcript.
    """
    err.print(f"[bold red]error:[/] {escape(redact_pans(message))}", markup=True,
              highlight=False)
