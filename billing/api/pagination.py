"""Cursor pagination: ``{data, has_more, next_cursor}``, the cursor an opaque token.

The cursor is the URL-safe base64 of ``id:<last id>`` and each list asks its service for rows
after (or, newest first, before) that id, one more than ``limit`` to learn ``has_more``. Ids
only grow, so a row inserted while a client pages is never shown twice nor shifts a page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from billing.api.limits import MAX_ID
from billing.api.problems import ApiProblem

T = TypeVar("T")
R = TypeVar("R")

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page, 1 to 100.")]
Cursor = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                     description="`next_cursor` of the previous page.")]


class Page(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor stands for; a cursor this API did not make is a 422 on ``cursor``."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    kind, _, digits = text.partition(":")
    if kind != "id" or not digits.isascii() or not digits.isdigit() or len(digits) > 10 \
            or not 0 <= int(digits) <= MAX_ID:
        raise ApiProblem(422, "invalid-input", "cursor: not a cursor this API gave out",
                         field="cursor")
    return int(digits)


def page_of(rows: Sequence[R], limit: int, id_of: Callable[[R], int],
            view: Callable[[R], T]) -> Page[T]:
    """A page from up to ``limit + 1`` rows fetched in order."""
    shown = list(rows[:limit])
    more = len(rows) > limit
    return Page[T](data=[view(r) for r in shown], has_more=more,
                   next_cursor=encode_cursor(id_of(shown[-1])) if more and shown else None)
