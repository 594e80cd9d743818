"""Every command module, in help order; each exposes ``register(app)``."""

from __future__ import annotations

from types import ModuleType

from billing.cli import (
    api_keys_cmd,
    cards_cmd,
    config_cmd,
    customers_cmd,
    db_cmd,
    documents_cmd,
    emails_cmd,
    engine_cmd,
    events_cmd,
    explain_cmd,
    outbox_cmd,
    plans_cmd,
    report_cmd,
    sandbox_cmd,
    subscriptions_cmd,
    webhooks_cmd,
)

MODULES: list[ModuleType] = [
    db_cmd, plans_cmd, customers_cmd, cards_cmd, subscriptions_cmd, documents_cmd, engine_cmd,
    events_cmd, explain_cmd, outbox_cmd, emails_cmd, webhooks_cmd, report_cmd, sandbox_cmd,
    config_cmd, api_keys_cmd,
]
