"""Command-line parameters shared by several commands, defined once so they are bounded alike.

Engine ids (subscriptions, invoices, customers...) are ``Integer`` columns, 32-bit on PostgreSQL.
A number outside ``1..MAX_ID`` names no row, and handing it to the driver fails deep inside a query
(``DataError`` on PostgreSQL, ``OverflowError`` past 2**63 on SQLite), which the CLI could only
report as an internal error. Parsing every id here turns such a typo into one ``InvalidInput``
line (exit 2) before a database is opened.
Commands use these aliases instead of ``int`` with bounds of their own, so a new command can't
forget them.

The parser raises ``InvalidInput`` rather than using typer's range check, whose usage error spans
three lines; an id typed by mistake may be a card number, which the error line redacts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from billing.errors import InvalidInput
from billing.store.models import MAX_ROW_ID

__all__ = ["MAX_ID", "InvoiceFilter", "Offset", "SubscriptionFilter", "SubscriptionId",
           "bounded_int"]

MAX_ID = MAX_ROW_ID
"""The largest id the schema holds on both backends (``2**31 - 1``)."""


def bounded_int(what: str, low: int = 1, high: int = MAX_ID) -> Callable[[Any], int]:
    """A typer ``parser`` accepting ASCII digits from ``low`` to ``high``, for ``what``.

    ``int()`` alone would also take ``'1_000'``, ``'+5'`` and non-ASCII digits ('١'); an id is
    plain digits, anything else is a mistake to report, not to reinterpret.
    """

    def parse(value: Any) -> int:
        if isinstance(value, int):  # a default, already an int
            return value
        text = str(value).strip()
        # The length check first: int() refuses strings of over 4300 digits with a ValueError.
        if text.isascii() and text.isdigit() and len(text) <= 20 and low <= int(text) <= high:
            return int(text)
        raise InvalidInput(f"{what} must be a whole number from {low} to {high} "
                           f"(got {str(value)!r})")

    return parse


def _id_argument(what: str, help_text: str) -> Any:
    return typer.Argument(parser=bounded_int(what), metavar="ID", help=help_text,
                          show_default=False)


def _id_option(what: str, help_text: str) -> Any:
    return typer.Option(parser=bounded_int(what), metavar="ID", help=help_text)


SubscriptionId = Annotated[int, _id_argument("the subscription id", "Subscription id.")]
SubscriptionFilter = Annotated[
    int | None, _id_option("--subscription", "Only this subscription (its id).")]
InvoiceFilter = Annotated[int | None, _id_option("--invoice", "Only this invoice (its id).")]
Offset = Annotated[int, typer.Option(parser=bounded_int("--offset", low=0), metavar="N",
                                     help="Skip this many rows.")]
"""A row offset: not an id, but handed to the database the same way, so bounded the same way."""
