"""Engines for the two supported stores, configured alike where it matters for money.

SQLite (the embedded default): foreign keys on, WAL so readers don't block the writer, a busy
timeout, and every transaction opened with ``BEGIN IMMEDIATE`` so two processes serialize on the
write lock up front instead of failing half-way. PostgreSQL (production): psycopg 3 with a pool
sized for the charge concurrency. Both engines hide bound parameters from logs and errors.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from billing.errors import ConfigError


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA busy_timeout = 30000")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 16) -> Engine:
    """An engine for ``url`` with the project's settings; bad URLs are a ``ConfigError``."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("BILLING_DATABASE_URL is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return create_engine(
            url, hide_parameters=True, pool_size=pool_size, max_overflow=pool_size,
            pool_pre_ping=True, connect_args={"connect_timeout": 10},
            # Multi-row INSERTs of up to 16 rows stay short enough for psycopg to cache their
            # parsing; longer ones were parsed again every time (bench/README.md).
            insertmanyvalues_page_size=16,
        )
    raise ConfigError(f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://")


class Store:
    """An engine and its session factory: the handle services receive."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, pool_size: int = 16) -> Store:
        return cls(make_engine(url, pool_size=pool_size))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()
