"""Shared fixtures: a clean, migrated database on each selected backend, a fixed clock.

Database tests take the ``db_url`` (or ``store``) fixture and run once per backend selected with
``--db`` (default: ``sqlite,postgresql``). SQLite gets a fresh file per test, copied from one
migrated template; PostgreSQL gets one database per test session (created here, dropped at the
end), migrated once and truncated between tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from billing.clock import FixedClock
from billing.store import migrate
from billing.store.engine import Store, make_engine
from billing.store.models import Base

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default="sqlite,postgresql",
                     help="comma-separated backends for database tests (sqlite, postgresql)")
    parser.addoption("--pg-url", default=os.environ.get("BILLING_TEST_PG_URL", DEFAULT_PG),
                     help="an existing PostgreSQL database used to create throwaway test databases")
    parser.addoption("--crash-runs", type=int, default=20,
                     help="killed billing runs per backend in the crash test (default 20)")
    parser.addoption("--crash-seed", type=int, default=None,
                     help="seed of the crash test's kill plan (default: random, printed)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = [b.strip() for b in metafunc.config.getoption("--db").split(",") if b.strip()]
        unknown = set(chosen) - {"sqlite", "postgresql"}
        if unknown:
            raise pytest.UsageError(f"--db: unknown backend(s) {sorted(unknown)}")
        if metafunc.definition.get_closest_marker("postgresql_only"):
            chosen = [b for b in chosen if b == "postgresql"]
        metafunc.parametrize("backend", chosen, scope="session")


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test keeps the restore high-water marks (BILLING_STATE_DIR) in a folder of its own:
    the suite never writes to the home directory, and no test sees another's marks."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("BILLING_STATE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "billing.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def pg_server_url(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--pg-url"))


def create_pg_database(server_url: str, prefix: str = "billing_test") -> str:
    """Create an empty database next to ``server_url``'s and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_session_db(pg_server_url: str) -> Iterator[str]:
    url = create_pg_database(pg_server_url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    drop_pg_database(pg_server_url, url)


def truncate_all(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on ``backend``."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "billing.db"
        shutil.copy(template, path)
        _forget_installation(f"sqlite:///{path}")
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_session_db")
    truncate_all(url)
    return url


def _forget_installation(url: str) -> None:
    """Copies of one template must not share the order-number prefix the migration chose, nor
    an installation id (the name of their restore high-water mark)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM meta WHERE key IN ('order_prefix', 'installation_id')"))
    engine.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    st = Store.open(db_url)
    yield st
    st.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 1, 15, 12, 0, tzinfo=UTC))


@pytest.fixture
def plans_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "plans"
