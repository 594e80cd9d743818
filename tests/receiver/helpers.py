"""Helpers for receiver tests: hand-signed notifies, polling, and a billed customer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select

from billing.catalog.loader import load_catalog
from billing.gateway import sign
from billing.metrics import Metrics
from billing.sandbox import DEFAULT_MERCHANT
from billing.services.cards import add_direct
from billing.services.catalog import apply_catalog
from billing.services.customers import add_customer
from billing.services.ports import Deps
from billing.services.subscriptions import create_subscription
from billing.store.engine import Store
from billing.store.models import Base, GatewayNotification, Invoice, PaymentAttempt
from billing.store.uow import UnitOfWork

PLANS = Path(__file__).resolve().parents[2] / "plans"
NOTIFY = "/iotpay/notify"


def notify_fields(**overrides: Any) -> dict[str, Any]:
    """A payment notify as the sandbox sends it (unsigned)."""
    fields: dict[str, Any] = {
        "payOrderId": "P26011507AB00000001", "mchId": DEFAULT_MERCHANT.mch_id,
        "mchOrderNo": "NOSUCHORDER-01", "amount": 1850, "currency": "CAD", "payType": "pay",
        "refundable": 1850, "status": 2, "paySuccTime": "2026-01-15 07:00:00",
        "cardNum": "625094******0014", "cardType": "UP", "channel": "UPI_EX",
    }
    fields.update(overrides)
    return fields


def signed(fields: dict[str, Any], key: str = DEFAULT_MERCHANT.key) -> bytes:
    body = dict(fields)
    body["sign"] = sign(body, key)
    return json.dumps(body, separators=(",", ":")).encode()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def count(store: Store, model: type[Base]) -> int:
    with UnitOfWork(store) as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def notifications(store: Store) -> list[GatewayNotification]:
    with UnitOfWork(store) as uow:
        return list(uow.session.scalars(select(GatewayNotification)
                                        .order_by(GatewayNotification.id)))


def all_applied(store: Store, metrics: Metrics) -> bool:
    """Every stored notify was applied (or failed) and counted: the background task is done."""
    rows = notifications(store)
    counted = sum(metrics.registry.get_sample_value("billing_notifies_total", {"result": r}) or 0
                  for r in ("applied", "discrepancy", "error"))
    done = all(r.processed_at is not None or r.error for r in rows)
    return bool(rows) and done and counted >= len(rows)


def invoice_and_attempt(store: Store) -> tuple[Invoice, PaymentAttempt]:
    with UnitOfWork(store) as uow:
        invoice = uow.session.scalars(select(Invoice)).one()
        attempt = uow.session.scalars(select(PaymentAttempt)).one()
        return invoice, attempt


def customer_with_card(deps: Deps, number: str | None = None) -> int:
    """Catalog, customer ``cus_1`` and (if ``number``) a card vaulted in the sandbox."""
    with UnitOfWork(deps.store) as uow:
        apply_catalog(uow, deps.clock, load_catalog(PLANS))
    with UnitOfWork(deps.store) as uow:
        customer = add_customer(uow, deps.clock, external_id="cus_1", email="ann@example.com",
                                name="Ann", timezone="America/Toronto")
    if number is not None:
        add_direct(deps, "cus_1", number=SecretStr(number), cvv=SecretStr("123"),
                   expiry="1230", holder="Ann Example")
    return customer.id


def subscribe(deps: Deps, number: str) -> None:
    """A customer on the weekly plan (no trial): one open invoice of 18.50 CAD, due now."""
    customer_with_card(deps, number)
    with UnitOfWork(deps.store) as uow:
        create_subscription(uow, deps.clock, customer="cus_1", plan="coffee-weekly")
