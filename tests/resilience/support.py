"""Shared pieces of the resilience suite: a billing day's customers, the engine as a subprocess,
and the invariants every test ends on.

The invariants are read from two independent sources, the engine's database and the sandbox's
ledger and request counts, so a bug in one cannot hide behind the other:

* ``assert_ledger_agrees``: each invoice has one approved charge across all its ``mchOrderNo``s
  if paid and none otherwise, the charged order is the succeeded attempt, amounts agree, and the
  ledger holds no charge the database does not know about;
* ``assert_no_blind_resend``: an invoice's next attempt (a new order number) only ever follows a
  definite failure of the previous one, and a failure that was not definite when first seen
  (unknown, pending, or a crash left it ``sending``) was settled with ``cc_query`` first.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy import select

from billing.domain.payments import IN_FLIGHT
from billing.sandbox import cards
from billing.sandbox.merchants import DEFAULT_MERCHANT
from billing.sandbox.server import SandboxServer
from billing.store.models import Event, GatewayNotification, PaymentAttempt
from billing.store.uow import UnitOfWork
from tests.engine.harness import World

PURCHASE = "cc_purchasewithtoken"
QUERY = "cc_query"
UNRESOLVED = frozenset(s.value for s in IN_FLIGHT)

CARD_MIX: tuple[str, ...] = (
    cards.APPROVE, cards.DECLINE_INSUFFICIENT_FUNDS, cards.APPROVE,
    cards.DECLINE_TWICE_THEN_APPROVE, cards.APPROVE, cards.PENDING_THEN_APPROVE,
)
"""Half approve; the rest decline softly, decline twice then approve, or settle late."""
PAYABLE = frozenset({cards.APPROVE, cards.DECLINE_TWICE_THEN_APPROVE, cards.PENDING_THEN_APPROVE})


@dataclass(frozen=True)
class Customer:
    ref: str
    card: str
    subscription: int


def populate(world: World, count: int, *, plan: str = "starter-monthly",
             mix: tuple[str, ...] = CARD_MIX, prefix: str = "cust") -> list[Customer]:
    """``count`` customers, each with a card from ``mix`` (in turn) and a subscription billed
    at once (no trial), so each has one invoice due now."""
    made = []
    for n in range(count):
        card = mix[n % len(mix)]
        ref = world.customer(f"{prefix}{n:03d}", card)
        made.append(Customer(ref, card, world.subscribe(ref, plan, trial_days=0)))
    return made


def invoice_cards(world: World, customers: list[Customer]) -> dict[int, str]:
    """Invoice id -> the test card that pays it."""
    by_sub = {c.subscription: c.card for c in customers}
    return {i.id: by_sub[i.subscription_id] for i in world.invoices()
            if i.subscription_id in by_sub}


def unresolved(world: World) -> list[str]:
    return [a.mch_order_no for a in world.attempts() if a.state in UNRESOLVED]


# --- the invariants ---------------------------------------------------------------------------


def assert_ledger_agrees(world: World) -> int:
    """The sandbox ledger and the database tell the same story, invoice by invoice and in total.
    Returns the number of paid invoices."""
    ledger = world.sandbox.ledger()
    attempts = world.attempts()
    by_invoice: dict[int, list[PaymentAttempt]] = {}
    for a in attempts:
        by_invoice.setdefault(a.invoice_id, []).append(a)
    paid = 0
    for invoice in world.invoices():
        mine = by_invoice.get(invoice.id, [])
        charged = [(a, ledger.charges(a.mch_order_no)) for a in mine]
        charged = [(a, n) for a, n in charged if n]
        succeeded = [a for a in mine if a.state == "succeeded"]
        where = (invoice.number, invoice.status, [(a.mch_order_no, a.state) for a in mine])
        if invoice.status == "paid":
            paid += 1
            assert [n for _, n in charged] == [1], where
            assert succeeded == [charged[0][0]], where
            order = ledger.order(succeeded[0].mch_order_no)
            assert order is not None and order.status in (2, 3), where
            assert order.amount == succeeded[0].amount == invoice.total == invoice.amount_paid, (
                where, order.amount, invoice.total, invoice.amount_paid)
            assert order.currency == invoice.currency
            assert succeeded[0].pay_order_id == order.pay_order_id, where
        else:
            assert charged == [] and succeeded == [], where
    # "not sent" is a promise that the gateway never acted on the order: only then may the
    # invoice get a new order number without asking first
    acted_on = [a.mch_order_no for a in attempts
                if a.state == "failed_not_sent" and ledger.order(a.mch_order_no) is not None]
    assert acted_on == [], f"recorded as not sent, yet the gateway has the order: {acted_on}"
    known = {a.mch_order_no for a in attempts}
    strays = [o.mch_order_no for o in ledger.orders if o.mch_order_no not in known]
    assert strays == [], f"the gateway holds orders the database does not know: {strays}"
    assert ledger.total_charges == paid, (ledger.total_charges, paid)
    assert all(o.charged <= 1 for o in ledger.orders)
    return paid


def assert_all_resolved(world: World) -> None:
    left = [(a.mch_order_no, a.state) for a in world.attempts() if a.state in UNRESOLVED]
    assert left == [], f"attempts still unresolved: {left}"


_RESOLVING = ("payment.declined", "payment.not_sent", "alert.gateway_rejected")
_UNCERTAIN = ("payment.unknown", "payment.pending")


def assert_no_blind_resend(world: World) -> int:
    """A new order number for an invoice only after the previous one definitely failed, and
    an uncertain previous one was settled by ``cc_query`` first. Returns how many attempts were
    resolved that way (so a test can insist the situation actually arose)."""
    events = world.events()
    started = {e.data.get("mch_order_no"): e.id for e in events
               if e.type == "payment.attempt_started"}
    by_invoice: dict[int, list[PaymentAttempt]] = {}
    for a in world.attempts():
        by_invoice.setdefault(a.invoice_id, []).append(a)
    settled_by_query = 0
    for attempts in by_invoice.values():
        attempts.sort(key=lambda a: a.attempt_no)
        for prev, nxt in itertools.pairwise(attempts):
            assert prev.state in ("failed", "failed_not_sent"), (prev.mch_order_no, prev.state)
            own = [e for e in events if e.data.get("mch_order_no") == prev.mch_order_no]
            resolved = [e for e in own if e.type in _RESOLVING]
            assert resolved, f"{prev.mch_order_no} has no resolving event"
            assert resolved[0].id < started[nxt.mch_order_no], (prev.mch_order_no, "overtaken")
            source = resolved[0].data.get("source")
            if any(e.type in _UNCERTAIN for e in own):
                # its own purchase answer left it open: only a query (or a signed notify) can
                # have closed it
                assert source in ("query", "resend", "notify"), (prev.mch_order_no, source)
            if source in ("query", "resend"):
                settled_by_query += 1
                assert world.sandbox.request_count(QUERY, prev.mch_order_no) >= 1, (
                    prev.mch_order_no, "re-sent as a new order without a cc_query")
    return settled_by_query


def assert_resent_only_after_query(sandbox: SandboxServer, orders: list[str]) -> int:
    """At the gateway: an order number sent twice was looked up in between (the engine resends
    the *same* number only after ``cc_query`` said "no such order"). Returns how many were."""
    resent = 0
    for order in orders:
        if sandbox.request_count(PURCHASE, order) > 1:
            resent += 1
            assert sandbox.request_count(QUERY, order) >= 1, order
    return resent


def notifications(world: World) -> list[GatewayNotification]:
    with UnitOfWork(world.deps.store) as uow:
        return list(uow.session.scalars(select(GatewayNotification)
                                        .order_by(GatewayNotification.id)))


def events_of(world: World, kind: str) -> list[Event]:
    with UnitOfWork(world.deps.store) as uow:
        return list(uow.session.scalars(select(Event).where(Event.type == kind)
                                        .order_by(Event.id)))


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# --- the engine as a subprocess ---------------------------------------------------------------

_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")


def engine_env(db_url: str, sandbox: SandboxServer, work: Path, *, public_url: str,
               **extra: str) -> dict[str, str]:
    """A clean environment for ``python -m billing``: this database, this sandbox over HTTP, mail
    to files, restore marks in ``work``, nothing inherited that could point it elsewhere (no
    ``BILLING_*``/``IOTPAY_*``); ``PYTHONPATH`` is kept so the child runs the same code as the
    test."""
    env = {k: v for k, v in os.environ.items() if k in _INHERITED}
    env.update({
        "BILLING_DATABASE_URL": db_url,
        "BILLING_OUTBOX_DIR": str(work / "outbox"),
        "BILLING_PUBLIC_URL": public_url,
        "BILLING_STATE_DIR": str(work / "state"),
        "IOTPAY_BASE_URL": sandbox.base_url,
        "IOTPAY_MCH_ID": DEFAULT_MERCHANT.mch_id,
        "IOTPAY_MCH_KEY": DEFAULT_MERCHANT.key,
        "IOTPAY_LOGIN_NAME": DEFAULT_MERCHANT.login_name,
        "IOTPAY_READ_TIMEOUT": "10",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def billing_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "billing", *args]


def run_once_cmd(at: datetime) -> list[str]:
    return billing_cmd("run-once", "--now", at.isoformat(), "--json")


@dataclass
class Proc:
    """A child process whose output goes to a file (no pipe to fill up or leave unclosed)."""

    popen: subprocess.Popen[bytes]
    log: Path
    _out: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"pid {self.pid} did not finish in {timeout}s:\n{self.tail()}") from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def close(self) -> None:
        self.kill()
        self._out.close()


def spawn(cmd: list[str], env: Mapping[str, str], cwd: Path, log: Path) -> Proc:
    out = log.open("wb")
    try:
        popen = subprocess.Popen(cmd, env=dict(env), cwd=cwd, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    except BaseException:
        out.close()
        raise
    return Proc(popen, log, out)


@contextmanager
def processes() -> Iterator[list[Proc]]:
    """Children started inside are killed (if still running) and reaped on the way out."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.close()
