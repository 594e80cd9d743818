"""A billing world for engine tests: store + sandbox over HTTP + fixed clock + helpers.

``World`` wires the real services against the in-process sandbox (and, when given, the real
notify receiver), travels in time with ``run_until``, and checks the exactly-once invariants
against the sandbox ledger with ``assert_exactly_once``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select

from billing.catalog.loader import load_catalog
from billing.clock import FixedClock
from billing.daemon.ticks import PassReport, run_once
from billing.domain.payments import IN_FLIGHT
from billing.mail import MemoryTransport
from billing.sandbox.server import SandboxServer
from billing.services.cards import add_direct
from billing.services.catalog import apply_catalog
from billing.services.customers import add_customer
from billing.services.ports import Deps
from billing.services.subscriptions import create_subscription
from billing.store.models import (
    Event,
    GatewayNotification,
    Invoice,
    PaymentAttempt,
    Subscription,
)
from billing.store.uow import UnitOfWork

PLANS = Path(__file__).resolve().parents[2] / "plans"


@dataclass
class World:
    deps: Deps
    sandbox: SandboxServer
    clock: FixedClock
    mail: MemoryTransport = field(default_factory=MemoryTransport)

    def apply_plans(self, directory: Path = PLANS) -> None:
        with UnitOfWork(self.deps.store) as uow:
            apply_catalog(uow, self.clock, load_catalog(directory))

    def customer(self, ref: str, card: str | None, *, tz: str = "America/Toronto",
                 expiry: str = "1230") -> str:
        with UnitOfWork(self.deps.store) as uow:
            add_customer(uow, self.clock, external_id=ref, email=f"{ref}@example.com",
                         name=ref.title(), timezone=tz)
        if card is not None:
            add_direct(self.deps, ref, number=SecretStr(card), cvv=SecretStr("123"),
                       expiry=expiry, holder=ref.title())
        return ref

    def subscribe(self, customer: str, plan: str, **kwargs: Any) -> int:
        with UnitOfWork(self.deps.store) as uow:
            view = create_subscription(uow, self.clock, customer=customer, plan=plan, **kwargs)
        return int(view["id"])

    def tick(self) -> PassReport:
        """One pass, then let the notifies it caused arrive and be applied."""
        report = run_once(self.deps, transport=self.mail)
        self.sandbox.wait_for_notifies(5.0)
        self.settle(self.notifies_applied)
        return report

    def notifies_applied(self) -> bool:
        with UnitOfWork(self.deps.store) as uow:
            return uow.session.scalar(select(GatewayNotification.id).where(
                GatewayNotification.processed_at.is_(None)).limit(1)) is None

    def days(self, at: datetime, until: datetime, step: timedelta = timedelta(days=1)) -> Iterator[
            datetime]:
        while at <= until:
            yield at
            at += step

    def settle(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait (in real time, briefly) for notifies applied after their answer to land."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def run_until(self, until: datetime, step: timedelta = timedelta(days=1)) -> None:
        """One pass per ``step`` from now until ``until`` inclusive, like a daemon sampled daily."""
        for at in self.days(self.clock.now(), until, step):
            self.clock.set(at)
            self.tick()
        self.clock.set(until)

    # --- reading state -----------------------------------------------------------------------

    def invoices(self, sub_id: int | None = None) -> list[Invoice]:
        with UnitOfWork(self.deps.store) as uow:
            query = select(Invoice).order_by(Invoice.id)
            if sub_id is not None:
                query = query.where(Invoice.subscription_id == sub_id)
            return list(uow.session.scalars(query))

    def subscription(self, sub_id: int) -> Subscription:
        with UnitOfWork(self.deps.store) as uow:
            sub = uow.session.get(Subscription, sub_id)
            assert sub is not None
            return sub

    def attempts(self, invoice_id: int | None = None) -> list[PaymentAttempt]:
        with UnitOfWork(self.deps.store) as uow:
            query = select(PaymentAttempt).order_by(PaymentAttempt.id)
            if invoice_id is not None:
                query = query.where(PaymentAttempt.invoice_id == invoice_id)
            return list(uow.session.scalars(query))

    def events(self, prefix: str = "") -> list[Event]:
        with UnitOfWork(self.deps.store) as uow:
            return list(uow.session.scalars(select(Event).where(Event.type.startswith(prefix))
                                            .order_by(Event.id)))

    def emails(self) -> list[tuple[str, str]]:
        """(template name from the Message-ID's dedupe key or subject, recipient) of sent mail."""
        return [(str(m["Subject"]), str(m["To"])) for m in self.mail.sent]

    def assert_exactly_once(self, *, allow_unresolved: bool = False) -> None:
        """The ledger is the truth: paid invoices were charged once, others never."""
        ledger = self.sandbox.ledger()
        for invoice in self.invoices():
            orders = [a.mch_order_no for a in self.attempts(invoice.id)]
            charged = sum(ledger.charges(o) for o in orders)
            expected = 1 if invoice.status == "paid" and invoice.total > 0 else 0
            if invoice.status in ("open", "uncollectible"):
                expected = 0
            assert charged == expected, (invoice.number, invoice.status, charged, orders)
            succeeded = [a for a in self.attempts(invoice.id) if a.state == "succeeded"]
            assert len(succeeded) == expected, (invoice.number, [a.state for a in
                                                                 self.attempts(invoice.id)])
            if expected:
                assert invoice.amount_paid == succeeded[0].amount == invoice.total
        if not allow_unresolved:
            unresolved = [a.mch_order_no for a in self.attempts()
                          if a.state in {s.value for s in IN_FLIGHT}]
            assert unresolved == [], unresolved


def at(day: date | str, hour: int = 12) -> datetime:
    """Noon UTC of a day: a tick time away from Toronto's midnight boundaries."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)
