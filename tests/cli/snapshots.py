"""Reading a test database whole, to prove a refused command changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from billing.store.engine import Store
from billing.store.models import Base
from billing.store.uow import UnitOfWork


def everything(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    store = Store.open(db_url)
    try:
        with UnitOfWork(store) as uow:
            return {table.name: sorted((tuple(row) for row in uow.session.execute(select(table))),
                                       key=repr)
                    for table in Base.metadata.sorted_tables}
    finally:
        store.close()


def meta(db_url: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in everything(db_url)["meta"]}
