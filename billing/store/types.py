"""Column types shared by the models.

``UTCDateTime`` makes SQLite and PostgreSQL behave alike: only aware datetimes may be written, they
are stored as UTC (naive text on SQLite, ``timestamptz`` on PostgreSQL) and always read back aware.
``enum_of`` maps a domain ``StrEnum`` onto a plain ``VARCHAR`` holding its values, so services
compare ``InvoiceStatus.PAID``, never the string ``"paid"``, and a value outside the enum fails on
write instead of being stored; the table's CHECK constraint stays the database's own guard.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Enum
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime written to the store; pass an aware UTC instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_of(kind: type[StrEnum], length: int) -> Enum:
    """A non-native enum column of ``kind``'s values (not its member names)."""
    return Enum(kind, native_enum=False, create_constraint=False, length=length,
                values_callable=lambda members: [m.value for m in members],
                validate_strings=True)
