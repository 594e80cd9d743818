"""Prototypes of the performance proposals in bench/README.md, for measuring them only.

Most of them are now implemented in ``billing/`` (commit d77ef8d: group recording, pipelined
claims, preloading, one flush per intent batch, the skipped queries, proxy settings read once);
against that code they would patch functions that no longer work this way, so ``installed``
refuses them there (see ``superseded``) and only ``no-pre-ping`` still applies. They stay here as
the code the README's before/after figures were measured with.

``billing_day.py --variant NAME`` installs one or more of these by replacing module attributes of
``billing.services`` at run time, for that run only; nothing under ``billing/`` changes. Each
keeps the behaviour the benchmark's verification checks (every invoice paid exactly once, the
ledger agrees) on its happy path, which is all a benchmark exercises: they are evidence of what a
change would gain, not the change itself, and are not tested against the crash and fault suites.

* ``pipeline``: ``collect_due`` keeps the pool fed: the next batch's intents are created while
  the previous batch's charges are still in flight, instead of waiting for the whole batch
  (``pool.map``) before claiming more.
* ``preload``: after claiming a batch, load every row the batch will touch in one query per table
  and keep them referenced for the transaction (``session.info``). The session's identity map is
  weak, so today a row loaded with ``session.get`` and not kept is dropped and loaded again: the
  renewal loads the same plan and plan version five times per subscription; the intent phase
  loads subscription, card and customer one invoice at a time.
* ``intent-flush``: the intent phase adds every attempt first and flushes once per batch (one
  multi-row INSERT ... RETURNING, one executemany UPDATE, one multi-row event INSERT) instead of
  flushing per invoice. Implies ``preload``.
* ``lean-record``: the record step keeps the invoice it locked (today it is dropped and SELECTed
  again by ``apply_outcome``), skips the "another succeeded attempt?" query while the invoice is
  still open (a success always pays its invoice in the same transaction, and nothing reopens an
  invoice; the partial unique index stays the backstop), and counts a subscription's dunning
  invoices only when it is past_due or unpaid (``PAID_UP`` changes no other status). The extra
  ``UPDATE payment_attempts`` caused by the autoflush of that query disappears with it.
* ``group-record``: the pool threads only send; one recorder thread applies the outcomes that
  are ready, up to ``GROUP`` per transaction: the attempts and invoices are locked with one
  ``SELECT ... FOR UPDATE`` each (in id order, the receiver's order too: attempt, then invoice),
  and the changes flush as multi-row statements. A failing group is retried one attempt per
  transaction with ``collection.record``, so one bad outcome cannot hold back the others.
  Implies ``pipeline``, ``preload`` and ``lean-record``.
* ``no-trust-env``: the gateway client's ``requests.Session`` stops consulting the environment
  for proxies and .netrc on every request (``trust_env = False``).
* ``no-pre-ping``: the pool stops sending a ping on every checkout.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any, cast

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from billing.domain.payments import IN_FLIGHT, AttemptState, SendOutcome, order_number
from billing.services import claims, collection, invoicing, payments, renewal
from billing.services.events import record_event
from billing.services.installation import order_prefix
from billing.services.ports import Deps
from billing.store.models import (
    Base,
    Card,
    Customer,
    Invoice,
    PaymentAttempt,
    Plan,
    PlanVersion,
    Subscription,
)
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)

NAMES = ("pipeline", "preload", "intent-flush", "lean-record", "group-record", "no-trust-env",
         "no-pre-ping")
GROUP = 64
"""Most outcomes one group-record transaction applies."""

Patch = tuple[Any, str, Any]


# --- pipeline ---------------------------------------------------------------------------------


def collect_due_pipelined(deps: Deps, *, at: datetime | None = None,
                          stop: Any = None) -> collection.CollectSummary:
    """``collect_due`` with a refill threshold instead of a barrier per batch."""
    at = at or deps.clock.now()
    summary = collection.CollectSummary()
    size = max(deps.config.batch_size, deps.config.charge_concurrency)
    low_water = max(2 * deps.config.charge_concurrency, size // 2)
    with ThreadPoolExecutor(deps.config.charge_concurrency, "charge") as pool:
        pending: set[Future[str]] = set()
        more = True
        while more and (stop is None or not stop.is_set()):
            intents, claimed = collection.create_intents(deps, at, size)
            # the engine this was measured against had send_and_record; d77ef8d replaced it
            send_and_record = cast(Any, collection).send_and_record
            pending |= {pool.submit(send_and_record, deps, i) for i in intents}
            more = claimed >= size
            while more and len(pending) > low_water:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    summary.add(f.result())
        for f in pending:
            summary.add(f.result())
    return summary


# --- preload ----------------------------------------------------------------------------------


def _pin(session: Session, rows: Sequence[Any]) -> None:
    session.info.setdefault("bench_pins", []).extend(rows)


def _load(session: Session, model: type[Base], ids: set[int]) -> list[Any]:
    if not ids:
        return []
    column = model.__table__.c.id
    return list(session.scalars(select(model).where(column.in_(ids))))


def claim_and_preload(session: Session, model: type[Base], where: Sequence[Any],
                      order_by: Sequence[Any], limit: int) -> list[Any]:
    """``claim_rows``, then load (unlocked, as ``session.get`` did) and keep what the batch
    reads: plans, versions and customers for renewals; subscriptions, cards and customers for
    the intent phase."""
    rows = claims.claim_rows(session, model, where, order_by, limit)
    if not rows:
        return rows
    if model is Subscription:
        _pin(session, list(session.scalars(select(Plan))))
        _pin(session, list(session.scalars(select(PlanVersion))))
        _pin(session, _load(session, Customer, {r.customer_id for r in rows}))
    elif model is Invoice:
        subs = _load(session, Subscription, {r.subscription_id for r in rows
                                             if r.subscription_id is not None})
        _pin(session, subs)
        _pin(session, _load(session, Card, {s.card_id for s in subs if s.card_id is not None}))
        _pin(session, _load(session, Customer, {r.customer_id for r in rows}))
    return rows


# --- intent-flush -----------------------------------------------------------------------------


def create_intents_one_flush(deps: Deps, at: datetime,
                             limit: int) -> tuple[list[collection.Intent], int]:
    """``create_intents`` with the batch's attempts flushed together."""
    in_flight = exists().where(PaymentAttempt.invoice_id == Invoice.id,
                               PaymentAttempt.state.in_([s.value for s in IN_FLIGHT]))
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        invoices = claim_and_preload(session, Invoice, [
            Invoice.status == "open", Invoice.next_attempt_at <= at, Invoice.total > 0,
            ~in_flight,
        ], [Invoice.next_attempt_at, Invoice.id], limit)
        prefix = order_prefix(session) if invoices else ""
        made: list[tuple[Invoice, Card, PaymentAttempt]] = []
        for invoice in invoices:
            card = collection._card_for(session, invoice)
            if card is None:
                invoice.next_attempt_at = None
                record_event(session, at, "payment.no_card", invoice_id=invoice.id,
                             customer_id=invoice.customer_id,
                             subscription_id=invoice.subscription_id)
                payments.record_decline(session, invoice, at, deps.config, hard=True,
                                        reason="no card on file")
                continue
            number = invoice.attempt_count + 1
            attempt = PaymentAttempt(
                invoice_id=invoice.id, attempt_no=number,
                mch_order_no=order_number(prefix, invoice.id, number),
                amount=invoice.total - invoice.amount_paid, currency=invoice.currency,
                gateway_card_id=card.gateway_card_id, state=AttemptState.SENDING.value,
                created_at=at, sent_at=at, check_count=0, lease_owner=deps.config.worker,
                lease_until=at + deps.config.send_lease,
            )
            session.add(attempt)
            invoice.attempt_count, invoice.next_attempt_at, invoice.last_attempt_at = (
                number, None, at)
            record_event(session, at, "payment.attempt_started", customer_id=invoice.customer_id,
                         subscription_id=invoice.subscription_id, invoice_id=invoice.id,
                         mch_order_no=attempt.mch_order_no, attempt=number,
                         amount=attempt.amount, worker=deps.config.worker)
            made.append((invoice, card, attempt))
        session.flush()
        intents = []
        for invoice, card, attempt in made:
            customer = session.get(Customer, invoice.customer_id)
            assert customer is not None
            intents.append(collection.Intent(
                attempt.id, attempt.mch_order_no, attempt.amount, attempt.currency,
                card.gateway_card_id, collection.user_ref(customer),
                f"Invoice {invoice.number}"[:64]))
        uow.commit()
    return intents, len(invoices)


# --- lean-record ------------------------------------------------------------------------------


def record_keeping_invoice(deps: Deps, attempt_id: int, outcome: SendOutcome, *,
                           source: str) -> str:
    """``collection.record`` holding a reference to the invoice it locked."""
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        attempt = session.get(PaymentAttempt, attempt_id, with_for_update=True)
        assert attempt is not None
        invoice = session.get(Invoice, attempt.invoice_id, with_for_update=True)
        assert invoice is not None
        before = attempt.state
        payments.apply_outcome(session, attempt, outcome, deps.clock.now(), deps.config,
                               source=source)
        state, amount, currency = attempt.state, attempt.amount, attempt.currency
        uow.commit()
    deps.observe_charge(before, state, amount, currency)
    return state


def make_lean_succeed(original: Callable[..., None]) -> Callable[..., None]:
    def succeed(session: Session, invoice: Invoice, attempt: PaymentAttempt, at: datetime,
                source: str) -> None:
        if invoice.status != "open":
            original(session, invoice, attempt, at, source)
            return
        attempt.state, attempt.resolved_at = AttemptState.SUCCEEDED.value, at
        attempt.next_check_at, attempt.failure_reason = None, None
        payments._log(session, attempt, invoice, at, "payment.succeeded", source)
        invoicing.settle_paid(session, invoice, attempt, at)
    return succeed


def make_lean_dunning_count(original: Callable[[Session, int], int]) -> Callable[
        [Session, int], int]:
    def count(session: Session, subscription_id: int) -> int:
        sub = session.get(Subscription, subscription_id)  # in the identity map: settle_paid has it
        if sub is not None and sub.status not in ("past_due", "unpaid"):
            return 0  # PAID_UP leaves every other status as it is, whatever the count
        return original(session, subscription_id)
    return count


# --- group-record -----------------------------------------------------------------------------


def record_group(deps: Deps, items: list[tuple[int, SendOutcome]]) -> list[str]:
    """Apply several purchase outcomes in one transaction; returns the attempts' new states."""
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        ids = sorted(attempt_id for attempt_id, _ in items)
        attempts = {a.id: a for a in session.scalars(
            select(PaymentAttempt).where(PaymentAttempt.id.in_(ids))
            .order_by(PaymentAttempt.id).with_for_update())}
        invoices = list(session.scalars(
            select(Invoice).where(Invoice.id.in_({a.invoice_id for a in attempts.values()}))
            .order_by(Invoice.id).with_for_update()))
        _pin(session, invoices)
        _pin(session, _load(session, Subscription, {i.subscription_id for i in invoices
                                                    if i.subscription_id is not None}))
        now = deps.clock.now()
        seen: list[tuple[str, str, int, str]] = []
        for attempt_id, outcome in items:
            attempt = attempts[attempt_id]
            before = attempt.state
            payments.apply_outcome(session, attempt, outcome, now, deps.config, source="purchase")
            seen.append((before, attempt.state, attempt.amount, attempt.currency))
        uow.commit()
    for before, state, amount, currency in seen:
        deps.observe_charge(before, state, amount, currency)
    return [state for _, state, _, _ in seen]


class Recorder:
    """One thread applying outcomes as they arrive, up to ``GROUP`` per transaction."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.inbox: queue.Queue[tuple[int, SendOutcome] | None] = queue.Queue()
        self.states: list[str] = []
        self.thread = threading.Thread(target=self._run, name="charge-recorder", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        done = False
        while not done:
            first = self.inbox.get()
            group: list[tuple[int, SendOutcome]] = []
            if first is None:
                break
            group.append(first)
            while len(group) < GROUP:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                    break
                group.append(item)
            try:
                self.states += record_group(self.deps, group)
            except Exception:
                log.exception("group of %d outcomes failed; recording one by one", len(group))
                for attempt_id, outcome in group:
                    try:
                        self.states.append(collection.record(self.deps, attempt_id, outcome,
                                                             source="purchase"))
                    except Exception:
                        log.exception("could not record attempt %s", attempt_id)
                        self.states.append("unrecorded")

    def close(self) -> list[str]:
        self.inbox.put(None)
        self.thread.join()
        return self.states


def collect_due_grouped(deps: Deps, *, at: datetime | None = None,
                        stop: Any = None) -> collection.CollectSummary:
    """The pipelined ``collect_due`` whose pool threads only send."""
    at = at or deps.clock.now()
    size = max(deps.config.batch_size, deps.config.charge_concurrency)
    low_water = max(2 * deps.config.charge_concurrency, size // 2)
    recorder = Recorder(deps)

    def send(intent: collection.Intent) -> None:
        recorder.inbox.put((intent.attempt_id, collection.send(deps, intent)))

    with ThreadPoolExecutor(deps.config.charge_concurrency, "charge") as pool:
        pending: set[Future[None]] = set()
        more = True
        while more and (stop is None or not stop.is_set()):
            intents, claimed = collection.create_intents(deps, at, size)
            pending |= {pool.submit(send, i) for i in intents}
            more = claimed >= size
            while more and len(pending) > low_water:
                _, pending = wait(pending, return_when=FIRST_COMPLETED)
        wait(pending)
    summary = collection.CollectSummary()
    for state in recorder.close():
        summary.add(state)
    return summary


# --- installing -------------------------------------------------------------------------------


def patches(names: Sequence[str], deps: Deps) -> list[Patch]:
    out: list[Patch] = []
    chosen = set(names)
    if "group-record" in chosen:
        chosen |= {"preload", "lean-record"}
        out.append((collection, "collect_due", collect_due_grouped))
    elif "pipeline" in chosen:
        out.append((collection, "collect_due", collect_due_pipelined))
    if "intent-flush" in chosen:
        chosen.add("preload")
    if "preload" in chosen:
        out += [(renewal, "claim_rows", claim_and_preload),
                (collection, "claim_rows", claim_and_preload)]
    if "intent-flush" in chosen:
        out.append((collection, "create_intents", create_intents_one_flush))
    if "lean-record" in chosen:
        out += [(collection, "record", record_keeping_invoice),
                (payments, "_succeed", make_lean_succeed(payments._succeed)),
                (invoicing, "open_dunning_invoices",
                 make_lean_dunning_count(invoicing.open_dunning_invoices))]
    if "no-trust-env" in chosen:
        out.append((deps.gateway._session, "trust_env", False))  # type: ignore[attr-defined]
    if "no-pre-ping" in chosen:
        out.append((deps.store.engine.pool, "_pre_ping", False))
    return out


_IN_ENGINE = frozenset({"pipeline", "preload", "intent-flush", "lean-record", "group-record"})


def superseded(name: str) -> str | None:
    """Why the prototype ``name`` must not be applied to this engine, or None if it may."""
    if name in _IN_ENGINE and hasattr(collection, "record_many"):
        return "billing.services.collection already groups records (record_many) and pipelines"
    if name == "no-trust-env":
        from billing.gateway.client import default_session
        if "base_url" in inspect.signature(default_session).parameters:
            return "billing.gateway.client.default_session already reads proxy settings once"
    return None


@contextlib.contextmanager
def installed(names: Sequence[str], deps: Deps) -> Iterator[None]:
    """Apply the named variants for the duration of the block, then restore everything."""
    unknown = set(names) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; known: {', '.join(NAMES)}")
    stale = {n: why for n in names if (why := superseded(n)) is not None}
    if stale:
        raise ValueError("these prototypes are superseded by the engine itself: "
                         + "; ".join(f"{n}: {why}" for n, why in stale.items()))
    saved: list[Patch] = []
    try:
        for target, attr, value in patches(names, deps):
            saved.append((target, attr, getattr(target, attr)))
            setattr(target, attr, value)
        yield
    finally:
        for target, attr, value in reversed(saved):
            setattr(target, attr, value)
