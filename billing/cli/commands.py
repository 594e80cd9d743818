"""Every command module, in help order; each exposes ``register(app)``."""

from __future__ import annotations

from types import ModuleType

from billing.cli import config_cmd, customers_cmd, db_cmd, outbox_cmd, plans_cmd, sandbox_cmd

MODULES: list[ModuleType] = [db_cmd, plans_cmd, customers_cmd, outbox_cmd, sandbox_cmd, config_cmd]
