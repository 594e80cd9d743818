"""Persistence: SQLAlchemy models, SQLite and PostgreSQL engines, unit of work, migrations."""
