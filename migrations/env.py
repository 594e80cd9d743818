"""Alembic environment: runs with the engine handed over by ``billing.store.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from billing.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if not isinstance(engine, Engine):
        from billing.settings import load_settings
        from billing.store.engine import make_engine

        engine = make_engine(load_settings().database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `billing db upgrade`")
run_migrations_online()
