"""The ports the engine's services depend on, so tests and ``billing simulate`` can swap them.

``Gateway`` is the subset of the IOTPay client the engine calls; ``billing.gateway.IotpayClient``
satisfies it against the real gateway or the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from billing.clock import Clock
from billing.domain.subscriptions import LifecyclePolicy
from billing.gateway import CardInfo, GatewayReply, OrderInfo, RedirectInfo
from billing.store.engine import Store


class Gateway(Protocol):
    def cc_purchasewithtoken(
        self, *, mch_order_no: str, mch_user_id: str, card_id: str, amount: int,
        notify_url: str, currency: str = "CAD", subject: str | None = None,
        body: str | None = None, client_ip: str | None = None,
    ) -> GatewayReply[OrderInfo]: ...

    def cc_query(
        self, *, mch_order_no: str | None = None, pay_order_id: str | None = None
    ) -> GatewayReply[OrderInfo]: ...

    def cc_addcard(self, *, card_id: str, return_url: str) -> GatewayReply[RedirectInfo]: ...

    def cc_purchase(
        self, *, mch_order_no: str, mch_user_id: str, amount: int, notify_url: str,
        return_url: str, currency: str = "CAD", subject: str | None = None,
        body: str | None = None,
    ) -> GatewayReply[RedirectInfo]: ...

    def cc_querycard(self, *, card_id: str) -> GatewayReply[CardInfo]: ...

    def cc_directaddcard(
        self, *, card_id: str, card_num: str | SecretStr, holder: str, cvv: str | SecretStr,
        expiry_date: str | None = None,
    ) -> GatewayReply[CardInfo]: ...

    def cc_refund(
        self, *, mch_refund_no: str, pay_order_id: str, refund_amount: int, notify_url: str
    ) -> GatewayReply[OrderInfo]: ...

    def cc_void(
        self, *, mch_refund_no: str, pay_order_id: str, notify_url: str
    ) -> GatewayReply[OrderInfo]: ...


@dataclass(frozen=True)
class EngineConfig:
    """Engine knobs that are not dependencies: names, URLs, leases, batch sizes."""

    public_url: str = "http://127.0.0.1:8080"
    merchant_name: str = "Billing"
    merchant_email: str = "billing@example.com"
    worker: str = "worker"
    charge_concurrency: int = 16
    batch_size: int = 200
    send_lease: timedelta = timedelta(minutes=2)
    """How long a ``sending`` attempt belongs to its process; at least twice ``send_margin``."""
    send_margin: timedelta = timedelta(seconds=40)
    """The longest one purchase call can take (connect + read timeout, with room): a sender
    whose lease has less than this left does not start the request."""
    query_lease: timedelta = timedelta(minutes=5)
    """How long reconciliation holds an attempt while it queries (with retries) and re-sends."""
    mch_id: str | None = None
    """The merchant the gateway's answers must name; ``None`` skips that one check."""
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    """What happens to open invoices when a subscription is canceled or paused."""
    max_catch_up: int = 12
    """Periods one renewal pass issues per subscription after downtime; the rest follow on the
    next passes, so a clock far in the future can't make one pass issue thousands of invoices."""
    card_expiry_notice: timedelta = timedelta(days=30)
    update_card_link_ttl: timedelta = timedelta(days=30)
    pay_now_link_ttl: timedelta = timedelta(days=30)
    pay_now_lifetime: timedelta = timedelta(minutes=30)
    """How long a pay-now attempt's hosted page may stay unpaid before the reconcile tick closes
    it as abandoned (after ``cc_query`` finds no paid order) and the invoice's retries resume."""
    link_secret: SecretStr = field(default_factory=lambda: SecretStr("dev-link-secret"))
    # Customer emails: the merchant's identity in the footer, overrides, the trial notice.
    merchant_legal_name: str = ""
    merchant_address: tuple[str, ...] = ()
    email_logo_url: str | None = None
    templates_dir: Path | None = None
    trial_ending_notice: timedelta = timedelta(days=3)

    @property
    def notify_url(self) -> str:
        return self.public_url.rstrip("/") + "/iotpay/notify"


class ChargeObserver(Protocol):
    """Where charge outcomes and skipped tick items are counted (``billing.metrics.Metrics``);
    optional."""

    def charge(self, outcome: str, amount: int, currency: str) -> None: ...

    def notify_lag(self, seconds: float) -> None: ...

    def tick_item_failed(self, tick: str) -> None: ...


@dataclass
class Deps:
    """Everything a service needs from the outside world, wired once by the composition root."""

    store: Store
    gateway: Gateway
    clock: Clock
    config: EngineConfig = field(default_factory=EngineConfig)
    metrics: ChargeObserver | None = None

    def observe_charge(self, before: str, after: str, amount: int, currency: str) -> None:
        """Count an attempt's move to a new state; unchanged states are not counted twice."""
        if self.metrics is not None and before != after:
            self.metrics.charge(after, amount, currency)
