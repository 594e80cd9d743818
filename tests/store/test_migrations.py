"""The Alembic revisions build exactly the models' schema, and can be walked down and up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from billing.store import migrate
from billing.store.engine import make_engine
from billing.store.models import Base
from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, pg_server_url: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = create_pg_database(pg_server_url, "billing_migr")
    yield url
    drop_pg_database(pg_server_url, url)


def _differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_head_on_empty_database_gives_the_models_schema(empty_url: str) -> None:
    engine = make_engine(empty_url)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    engine.dispose()
    assert _differences(empty_url) == []


def test_downgrade_to_base_then_upgrade_again_restores_the_schema(empty_url: str) -> None:
    engine = make_engine(empty_url)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    engine.dispose()
    assert _differences(empty_url) == []


def test_unmigrated_database_is_refused_with_instructions(empty_url: str) -> None:
    from billing.errors import ConfigError

    engine = make_engine(empty_url)
    with pytest.raises(ConfigError, match="billing db upgrade"):
        migrate.require_current(engine)
    engine.dispose()
