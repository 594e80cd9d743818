"""Alembic, driven from code: ``billing db upgrade`` works from an installed wheel too.

The revisions live in the repository's ``migrations/`` folder; the wheel ships them as
``billing/_migrations``. Commands that touch data first check the database is at head, so a
user who forgot ``billing db upgrade`` gets that sentence instead of a SQL error.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from billing.errors import ConfigError


def migrations_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_migrations", here.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ConfigError("cannot find the migrations folder; reinstall the billing package")


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_current(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not at the code's head revision."""
    current, head = current_revision(engine), head_revision(engine)
    if current is None:
        raise ConfigError("the database has no schema yet; run `billing db upgrade`")
    if current != head:
        raise ConfigError(
            f"the database schema is at {current}, the code expects {head}; "
            "run `billing db upgrade`"
        )
