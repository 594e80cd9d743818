"""Reading a test database whole, to prove a refused command changed nothing; and copying it, to
play a backup and its restore."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

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


def backup(db_url: str, server_url: str, directory: Path) -> str:
    """A consistent copy of the database as it is now; returns where it is."""
    if db_url.startswith("sqlite"):
        copy = directory / "backup.db"
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as src, \
                sqlite3.connect(copy) as dst:
            src.backup(dst)
        return f"sqlite:///{copy}"
    name = f"{make_url(db_url).database}_backup"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(db_url).database}"'))
    admin.dispose()
    return make_url(db_url).set(database=name).render_as_string(hide_password=False)


def restore(db_url: str, copy: str) -> str:
    """Put a backup back; returns the URL the restored database is reached at (SQLite: the
    original file, replaced; PostgreSQL: the copy itself, as after ``pg_restore`` into a new
    database)."""
    if not db_url.startswith("sqlite"):
        return copy
    path = Path(db_url.removeprefix("sqlite:///"))
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    shutil.copy(copy.removeprefix("sqlite:///"), path)
    return db_url


def drop_copy(server_url: str, copy: str) -> None:
    if copy.startswith("sqlite"):
        return
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(copy).database}" WITH (FORCE)'))
    admin.dispose()
