"""Bounds on what a request may carry, so no input reaches a database column it can't fit.

``MAX_ID`` equals ``billing.store.models.MAX_ROW_ID`` (32-bit ids on PostgreSQL) and
``MAX_AMOUNT`` equals ``billing.domain.money.MAX_CHARGE``; tests/api check both. They are
repeated here because the API does not import the store.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

from billing.domain.money import MAX_CHARGE
from billing.domain.plans import MAX_QUANTITY

MAX_ID = 2**31 - 1
MAX_AMOUNT = MAX_CHARGE
__all__ = ["MAX_AMOUNT", "MAX_ID", "MAX_QUANTITY", "CustomerRef", "DocNumber", "RowId"]

RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
CustomerRef = Annotated[str, Path(min_length=1, max_length=64,
                                  description="The merchant's customer id (external_id).")]
DocNumber = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$",
                                description="An invoice or credit note number.")]
