"""Service fixtures: a migrated store with the example catalog and one customer, no gateway.

Creating, changing and importing subscriptions only issue invoices; nothing here charges, so
these tests need neither the sandbox nor the receiver.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from billing.catalog.loader import load_catalog
from billing.clock import FixedClock
from billing.services.catalog import apply_catalog
from billing.services.customers import add_customer
from billing.store.engine import Store
from billing.store.uow import UnitOfWork


@pytest.fixture
def shop(store: Store, clock: FixedClock, plans_dir: Path) -> Store:
    """``store`` with the shipped plans applied and customer ``ann`` (America/Toronto)."""
    with UnitOfWork(store) as uow:
        apply_catalog(uow, clock, load_catalog(plans_dir))
    with UnitOfWork(store) as uow:
        add_customer(uow, clock, external_id="ann", email="ann@example.com", name="Ann",
                     timezone="America/Toronto")
    return store
