"""The composition root: the one place that turns settings into a running engine.

Everything else receives its dependencies; only here are the store opened, the gateway client
built (for the real IOTPay or for an in-process sandbox), and the configuration read.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydantic import SecretStr

from billing.clock import Clock
from billing.errors import ConfigError
from billing.gateway import IotpayClient
from billing.metrics import Metrics
from billing.services import watermark
from billing.services.installation import (
    GatewayMark,
    claim_gateway,
    prepare_sandbox_database,
    record_run,
)
from billing.services.ports import Deps, EngineConfig
from billing.settings import Settings, mask_url
from billing.store.engine import Store
from billing.store.migrate import require_current
from billing.store.uow import UnitOfWork


@cache
def worker_name() -> str:
    """Who holds a lease: host and pid, so an operator can tell daemons apart, and a random part
    made once per process, because two containers can share a hostname and both be pid 1, and a
    lease is only as exclusive as its owner's name."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def engine_config(settings: Settings, **overrides: Any) -> EngineConfig:
    secret = settings.iotpay_mch_key or SecretStr("dev-link-secret")
    # A send must end (at worst by timing out) well inside its lease, so no other worker takes
    # the attempt over while the request may still be on its way.
    margin = timedelta(seconds=settings.iotpay_connect_timeout + settings.iotpay_read_timeout + 5)
    fields: dict[str, Any] = dict(
        send_margin=margin, send_lease=max(timedelta(minutes=2), 2 * margin),
        query_lease=max(timedelta(minutes=5), 5 * margin),
        public_url=settings.public_url, merchant_email=settings.merchant_email,
        merchant_name=settings.merchant_name, worker=worker_name(),
        charge_concurrency=settings.charge_concurrency,
        link_secret=SecretStr("links:" + secret.get_secret_value()),
        lifecycle=settings.lifecycle(),
        merchant_legal_name=settings.merchant_legal_name or "",
        merchant_address=tuple(settings.merchant_address.splitlines())
        if settings.merchant_address else (),
        email_logo_url=settings.email_logo_url, templates_dir=settings.templates_dir,
        trial_ending_notice=timedelta(days=settings.trial_ending_notice_days),
    )
    fields.update(overrides)
    return EngineConfig(**fields)


@dataclass(frozen=True)
class Merchant:
    """The IOTPay merchant the engine signs as and verifies notifies for."""

    mch_id: str
    key: SecretStr
    login_name: str


def merchant_from_settings(settings: Settings) -> Merchant:
    missing = [name for name, value in (
        ("IOTPAY_MCH_ID", settings.iotpay_mch_id), ("IOTPAY_MCH_KEY", settings.iotpay_mch_key),
        ("IOTPAY_LOGIN_NAME", settings.iotpay_login_name)) if not value]
    if missing:
        raise ConfigError(f"set {', '.join(missing)} to reach the gateway, or use --sandbox")
    assert settings.iotpay_mch_id and settings.iotpay_mch_key and settings.iotpay_login_name
    return Merchant(settings.iotpay_mch_id, settings.iotpay_mch_key, settings.iotpay_login_name)


@dataclass
class Runtime:
    """A wired engine: dependencies plus the merchant identity the receiver verifies with."""

    deps: Deps
    settings: Settings
    merchant: Merchant
    sandbox: Any | None = None

    _mark_file: watermark.StateFile | None = field(default=None, init=False, repr=False)
    _money_seen: watermark.Watermark | None = field(default=None, init=False, repr=False)

    def record_money(self) -> None:
        """Move the restore high-water mark up to the attempts and refunds stored so far.

        The file is only touched when the database's newest attempt or refund changed since
        this runtime last looked, so a daemon's idle ticks cost two indexed reads.
        """
        store = self.deps.store
        if self._mark_file is None:
            self._mark_file = watermark.state_file(store, self.settings.state_dir)
        with UnitOfWork(store) as uow:
            held = watermark.database_watermark(uow.session)
        if held != self._money_seen:
            watermark.advance(self._mark_file, held, at=self.deps.clock.now(),
                              database=_database_label(self.settings))
            self._money_seen = held

    def record_pass(self, at: datetime) -> None:
        """After a pass or tick as of ``at``: remember the run (for ``--now``) and the money."""
        record_run(self.deps.store, at)
        self.record_money()


def _database_label(settings: Settings) -> str:
    """Which database a mark file belongs to, for a person reading it; never a password."""
    return mask_url(settings.database_url)


@contextmanager
def open_runtime(settings: Settings, clock: Clock, *, sandbox: bool = False,
                 check_schema: bool = True, prepare_sandbox: bool = False,
                 admit: Callable[[Store], None] | None = None,
                 **config: Any) -> Iterator[Runtime]:
    """Open the store and the gateway (or an in-process sandbox) and close both afterwards.

    Before any gateway call, the database must belong to this gateway (``claim_gateway``) and
    must not be behind its restore high-water mark (``watermark.require_not_restored``).
    ``prepare_sandbox`` (the sandbox's own database only) creates and fills it when new.
    ``admit`` runs the caller's own refusals (the CLI's ``--now`` guard) before anything is
    written or sent.
    """
    with ExitStack() as stack:
        store = Store.open(settings.database_url, pool_size=settings.charge_concurrency + 4)
        stack.callback(store.close)
        if sandbox and prepare_sandbox:
            prepare_sandbox_database(store, clock, settings.plans_dir)
        if check_schema:
            require_current(store.engine)
        if admit is not None:
            admit(store)
        if sandbox:
            from billing.sandbox.merchants import DEFAULT_MERCHANT

            merchant = Merchant(DEFAULT_MERCHANT.mch_id, SecretStr(DEFAULT_MERCHANT.key),
                                DEFAULT_MERCHANT.login_name)
            claim_gateway(store, GatewayMark.sandbox())
        else:
            merchant = merchant_from_settings(settings)
            claim_gateway(store, GatewayMark.iotpay(settings.iotpay_base_url, merchant.mch_id))
        watermark.require_not_restored(store, settings.state_dir)
        box, base_url = None, settings.iotpay_base_url
        if sandbox:
            from billing.sandbox.server import SandboxServer

            box = stack.enter_context(SandboxServer())
            base_url = box.base_url
        client = IotpayClient(
            base_url=base_url, mch_id=merchant.mch_id, mch_key=merchant.key,
            login_name=merchant.login_name,
            timeout=(settings.iotpay_connect_timeout, settings.iotpay_read_timeout),
            pool_size=settings.charge_concurrency,
        )
        stack.callback(client.close)
        deps = Deps(store, client, clock,
                    engine_config(settings, **{"mch_id": merchant.mch_id, **config}),
                    metrics=Metrics(store, clock))
        if sandbox:  # a new in-process sandbox has an empty vault: fill it with our test cards
            from billing.demo import revault_test_cards

            revault_test_cards(deps)
        yield Runtime(deps, settings, merchant, box)
