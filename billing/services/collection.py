"""Collection: charge due invoices, exactly once.

Three phases per batch, each with its own reason:

1. **Intent** (one transaction): claim due invoices (``FOR UPDATE SKIP LOCKED`` on PostgreSQL)
   and commit a ``sending`` payment attempt with its ``mchOrderNo`` for each, before any request
   leaves. A crash after this commit leaves a ``sending`` row that reconciliation resolves.
2. **Send** (no transaction, no lock held): ``cc_purchasewithtoken`` in a bounded thread pool,
   so gateway latency overlaps instead of serializing a billing day.
3. **Record** (one short transaction per attempt): apply the outcome through
   ``billing.services.payments.apply_outcome``, the same function notifies and queries use.

A transport error is classified by what was sent: *not sent* may be retried with a new attempt;
*unknown* is only ever resolved with ``cc_query`` (see ``billing.services.reconcile``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Collection
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from billing.domain.cards import CardStatus
from billing.domain.invoices import InvoiceStatus
from billing.domain.payments import (
    IN_FLIGHT,
    AttemptState,
    Outcome,
    OutcomeKind,
    Source,
    order_number,
)
from billing.domain.subscriptions import Event as SubEvent
from billing.domain.subscriptions import Status
from billing.errors import GatewayError
from billing.faults import crashpoint
from billing.gateway import outcome_of_error, outcome_of_purchase
from billing.services.claims import claim_rows, hold_locked, load_by_id
from billing.services.events import record_event
from billing.services.installation import new_nonce, order_prefix
from billing.services.isolation import (
    ItemError,
    clear_failures,
    lock_one,
    not_backed_off,
    one_by_one,
)
from billing.services.lifecycle import apply_event
from billing.services.payments import apply_outcome, record_decline
from billing.services.ports import Deps
from billing.services.watched import (
    alert_if_overdue,
    check_watched,
    has_watched,
    watched_orders,
)
from billing.store.models import Card, Customer, Invoice, PaymentAttempt, Subscription
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intent:
    """Everything needed to send one attempt, copied out of the session that created it."""

    attempt_id: int
    mch_order_no: str
    amount: int
    currency: str
    card_id: str
    user_ref: str
    subject: str
    lease_until: datetime | None = None
    """Until when this sender may send; past ``lease_until - send_margin`` it must not start."""
    hosted: bool = False
    """A pay-now attempt: only the customer can pay its hosted page, so it is never re-sent."""


@dataclass
class CollectSummary:
    attempts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: list[ItemError] = field(default_factory=list)

    def add(self, state: str) -> None:
        self.attempts += 1
        self.outcomes[state] += 1


def _card_for(session: Session, invoice: Invoice) -> Card | None:
    sub = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    card = session.get(Card, sub.card_id) if sub is not None and sub.card_id else None
    if card is not None and card.status == CardStatus.ACTIVE:
        return card
    newest = session.scalar(select(Card).where(
        Card.customer_id == invoice.customer_id, Card.status == CardStatus.ACTIVE)
        .order_by(Card.id.desc()).limit(1))
    if newest is not None and sub is not None:
        sub.card_id = newest.id
    return newest


def user_ref(customer: Customer) -> str:
    """``mchUserId`` (at most 30 characters): the merchant's id when it fits."""
    return customer.external_id if len(customer.external_id) <= 30 else f"#{customer.id}"


def _attempt(invoice: Invoice, card: Card, prefix: str, deps: Deps, at: datetime,
             leased_at: datetime) -> PaymentAttempt:
    number = invoice.attempt_count + 1
    attempt = PaymentAttempt(
        invoice_id=invoice.id, attempt_no=number,
        mch_order_no=order_number(prefix, invoice.id, number, new_nonce()),
        amount=invoice.total - invoice.amount_paid, currency=invoice.currency,
        gateway_card_id=card.gateway_card_id, state=AttemptState.SENDING, created_at=at,
        sent_at=at, check_count=0, lease_owner=deps.config.worker,
        lease_until=leased_at + deps.config.send_lease,
    )
    invoice.attempt_count, invoice.next_attempt_at, invoice.last_attempt_at = number, None, at
    return attempt


def _preload(session: Session, invoices: list[Invoice]) -> None:
    """Load the subscriptions, cards and customers a batch of intents reads, once."""
    subs = load_by_id(session, Subscription, {i.subscription_id for i in invoices
                                              if i.subscription_id is not None})
    load_by_id(session, Card, {s.card_id for s in subs if s.card_id is not None})
    load_by_id(session, Customer, {i.customer_id for i in invoices})


KIND = "collect.invoice"


def _due_unchecked(at: datetime) -> list[ColumnElement[bool]]:
    in_flight = exists().where(PaymentAttempt.invoice_id == Invoice.id,
                               PaymentAttempt.state.in_(IN_FLIGHT))
    return [Invoice.status == InvoiceStatus.OPEN, Invoice.next_attempt_at <= at,
            Invoice.total > 0, ~in_flight, not_backed_off(KIND, Invoice.id, at)]


def _due_invoices(at: datetime, cleared: Collection[int] = ()) -> list[ColumnElement[bool]]:
    """Due, and with no watched pay-now order unless this tick has just queried them all
    (``cleared``): an abandoned page paid late must not be followed by a charge on the card."""
    return [*_due_unchecked(at), or_(~has_watched(), Invoice.id.in_(list(cleared)))]


def _intent_for(session: Session, deps: Deps, invoice: Invoice, prefix: str, at: datetime,
                leased_at: datetime) -> tuple[Invoice, Card, PaymentAttempt] | None:
    """Commit to charging ``invoice`` now, if its subscription's status lets it be charged."""
    sub = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    if sub is not None:
        decision = apply_event(session, sub, SubEvent.RETRY_DUE, at, deps.config.lifecycle)
        if not decision.charge:
            invoice.next_attempt_at = None  # whatever the policy did to it, not charged now
            record_event(session, at, "payment.not_collected", invoice_id=invoice.id,
                         customer_id=invoice.customer_id, subscription_id=sub.id,
                         status=Status(sub.status).value)
            return None
    card = _card_for(session, invoice)
    if card is None:
        invoice.next_attempt_at = None
        record_event(session, at, "payment.no_card", invoice_id=invoice.id,
                     customer_id=invoice.customer_id, subscription_id=invoice.subscription_id)
        record_decline(session, invoice, at, deps.config, hard=True, reason="no card on file")
        return None
    attempt = _attempt(invoice, card, prefix, deps, at, leased_at)
    session.add(attempt)
    record_event(session, at, "payment.attempt_started", customer_id=invoice.customer_id,
                 subscription_id=invoice.subscription_id, invoice_id=invoice.id,
                 mch_order_no=attempt.mch_order_no, attempt=attempt.attempt_no,
                 amount=attempt.amount, worker=deps.config.worker)
    return invoice, card, attempt


def _intents(session: Session, made: list[tuple[Invoice, Card, PaymentAttempt]]) -> list[Intent]:
    session.flush()
    intents = []
    for invoice, card, attempt in made:
        customer = session.get(Customer, invoice.customer_id)
        assert customer is not None
        intents.append(Intent(attempt.id, attempt.mch_order_no, attempt.amount,
                              attempt.currency, card.gateway_card_id, user_ref(customer),
                              f"Invoice {invoice.number}"[:64], attempt.lease_until))
    return intents


def create_intents(deps: Deps, at: datetime, limit: int,
                   failed: list[ItemError] | None = None,
                   cleared: Collection[int] = ()) -> tuple[list[Intent], int]:
    """Phase 1: claim due invoices and commit one ``sending`` attempt for each.

    The batch is one transaction with a few multi-row statements. If anything in it raises, it
    is redone one invoice at a time, so the invoice at fault is recorded in ``failed`` and
    backed off while every other one is charged. Returns the intents and how many invoices
    were claimed (some need no request: no card on file, or a status that is not charged).
    """
    claimed: list[int] = []
    try:
        with UnitOfWork(deps.store) as uow:
            session = uow.session
            invoices = claim_rows(session, Invoice, _due_invoices(at, cleared),
                                  [Invoice.next_attempt_at, Invoice.id], limit)
            claimed = [i.id for i in invoices]
            _preload(session, invoices)
            prefix = order_prefix(session) if invoices else ""
            # ``at`` is when the tick started; a lease runs from now, or a long billing day
            # would hand out leases that have already expired.
            leased_at = deps.clock.now()
            made = [m for m in (_intent_for(session, deps, i, prefix, at, leased_at)
                                for i in invoices) if m is not None]
            intents = _intents(session, made)
            clear_failures(session, KIND, claimed, at)
            uow.commit()
    except Exception:
        if not claimed:
            raise  # nothing could be claimed: the tick itself cannot run
        log.exception("charging a batch of %d invoices failed; one at a time", len(claimed))
        done, errors = one_by_one(deps, "collect", KIND, claimed, at,
                                  lambda session, invoice_id: _intent_one(
                                      session, deps, invoice_id, at, cleared))
        intents = [i for batch in done for i in batch]
        if failed is not None:
            failed += errors
    crashpoint("after_intent")
    return intents, len(claimed)


def _intent_one(session: Session, deps: Deps, invoice_id: int, at: datetime,
                cleared: Collection[int]) -> list[Intent]:
    invoice = lock_one(session, Invoice, invoice_id)
    if invoice is None or session.scalar(select(Invoice.id).where(
            Invoice.id == invoice_id, *_due_invoices(at, cleared))) is None:
        return []  # paid, charged or claimed by another worker since the batch failed
    made = _intent_for(session, deps, invoice, order_prefix(session), at, deps.clock.now())
    return _intents(session, [made] if made else [])


def send(deps: Deps, intent: Intent, source: Source = Source.PURCHASE) -> Outcome:
    """Phase 2: one purchase request, its every failure classified by what was sent."""
    try:
        reply = deps.gateway.cc_purchasewithtoken(
            mch_order_no=intent.mch_order_no, mch_user_id=intent.user_ref,
            card_id=intent.card_id, amount=intent.amount, currency=intent.currency,
            notify_url=deps.config.notify_url, subject=intent.subject,
        )
    except Exception as exc:  # classified: not sent only when provably so, else unknown
        if not isinstance(exc, GatewayError):
            log.exception("unexpected error sending %s", intent.mch_order_no)
        return outcome_of_error(exc, source)
    return outcome_of_purchase(reply, source)


def record(deps: Deps, attempt_id: int, outcome: Outcome) -> str:
    """Phase 3: apply an outcome in its own transaction; returns the attempt's new state."""
    return record_many(deps, [(attempt_id, outcome)])[0]


def record_many(deps: Deps, items: list[tuple[int, Outcome]]) -> list[str]:
    """Apply several outcomes in one transaction, in the order given; returns the new states.

    Rows are locked attempts first, then invoices, each in id order: the order every other
    writer (a notify, a reconciliation) takes them in, so two writers never wait on each other
    in a cycle.
    """
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        ids = sorted({attempt_id for attempt_id, _ in items})
        attempts = {a.id: a for a in session.scalars(
            select(PaymentAttempt).where(PaymentAttempt.id.in_(ids))
            .order_by(PaymentAttempt.id).with_for_update())}
        invoices = list(session.scalars(
            select(Invoice).where(Invoice.id.in_({a.invoice_id for a in attempts.values()}))
            .order_by(Invoice.id).with_for_update()))
        hold_locked(session, invoices)
        load_by_id(session, Subscription, {i.subscription_id for i in invoices
                                           if i.subscription_id is not None})
        load_by_id(session, Customer, {i.customer_id for i in invoices})
        now = deps.clock.now()
        seen: list[tuple[str, str, int, str]] = []
        for attempt_id, outcome in items:
            attempt = attempts[attempt_id]
            was = AttemptState(attempt.state).value
            decision = apply_outcome(session, attempt, outcome, now, deps.config)
            alert_if_overdue(session, attempt, decision, now)  # a watched page a person must see
            seen.append((was, AttemptState(attempt.state).value, attempt.amount,
                         attempt.currency))
        uow.commit()
    for was, now_state, amount, currency in seen:
        deps.observe_charge(was, now_state, amount, currency)
    return [now_state for _, now_state, _, _ in seen]


class Recorder:
    """Phase 3 for a whole tick: one thread applies outcomes as they arrive, a group per
    transaction, so the pool's threads only wait on the gateway and commits are shared."""

    GROUP = 64

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.inbox: queue.Queue[tuple[int, Outcome] | None] = queue.Queue()
        self.states: list[str] = []
        self.thread = threading.Thread(target=self._run, name="charge-recorder", daemon=True)
        self.thread.start()

    def put(self, attempt_id: int, outcome: Outcome) -> None:
        self.inbox.put((attempt_id, outcome))

    def _next_group(self) -> tuple[list[tuple[int, Outcome]], bool]:
        first = self.inbox.get()
        if first is None:
            return [], True
        group = [first]
        while len(group) < self.GROUP:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return group, True
            group.append(item)
        return group, False

    def _run(self) -> None:
        done = False
        while not done:
            group, done = self._next_group()
            if group:
                self._record(group)

    def _record(self, group: list[tuple[int, Outcome]]) -> None:
        crashpoint("after_send")
        try:
            self.states += record_many(self.deps, group)
        except Exception:
            log.exception("recording %d outcomes together failed; one by one", len(group))
            for attempt_id, outcome in group:
                try:
                    self.states.append(record(self.deps, attempt_id, outcome))
                except Exception:
                    # The attempt stays ``sending`` under its lease; reconciliation resolves it.
                    log.exception("could not record the outcome of attempt %s", attempt_id)
                    self.states.append("unrecorded")
        crashpoint("after_record")

    def close(self) -> list[str]:
        self.inbox.put(None)
        self.thread.join()
        return self.states


def _send_to(deps: Deps, recorder: Recorder, intent: Intent,
             stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        # Stopping: this request has not left, so say so now rather than leave the attempt to
        # wait out its lease; the invoice is due again a minute later, for whoever ticks next.
        outcome = Outcome(OutcomeKind.NOT_SENT, reason="stopped before sending")
    elif not lease_left(deps, intent):
        # Queued too long: reconciliation may take the attempt over at any moment, so sending
        # now could race it. Not sent; if nobody took it over, the invoice is due again soon.
        log.warning("lease of %s ran short before sending; not sent", intent.mch_order_no)
        outcome = Outcome(OutcomeKind.NOT_SENT, reason="lease ran short before sending")
    else:
        outcome = send(deps, intent)
    recorder.put(intent.attempt_id, replace(outcome, lease_until=intent.lease_until))


def lease_left(deps: Deps, intent: Intent) -> bool:
    """Whether a request started now finishes (at worst, timing out) before the lease ends."""
    return intent.lease_until is None or (
        deps.clock.now() + deps.config.send_margin < intent.lease_until)


def collect_due(deps: Deps, *, at: datetime | None = None,
                stop: threading.Event | None = None) -> CollectSummary:
    """One collection tick: charge every due invoice, sends in parallel, results in groups.

    New intents are claimed whenever the pool runs low, not after a whole batch has finished,
    so gateway latency overlaps; a claim takes a few pool-fulls, so other daemons share a big
    day instead of one daemon claiming it all.
    """
    at = at or deps.clock.now()
    size = min(deps.config.batch_size, deps.config.charge_concurrency * 8)
    low_water = deps.config.charge_concurrency * 2
    # Watched pay-now orders of due invoices first: one paid late settles its invoice here.
    # Whole invoices (the limit counts invoices); one whose check raises waits alone, alerted.
    cleared = check_watched(deps, watched_orders(deps, _due_unchecked(at), deps.config.batch_size,
                                                 at), tick="collect", at=at)
    recorder = Recorder(deps)
    failed: list[ItemError] = []
    try:
        with ThreadPoolExecutor(deps.config.charge_concurrency, "charge") as pool:
            pending: set[Future[None]] = set()
            more = True
            while more and (stop is None or not stop.is_set()):
                intents, claimed = create_intents(deps, at, size, failed, cleared)
                pending |= {pool.submit(_send_to, deps, recorder, i, stop) for i in intents}
                more = claimed >= size
                while more and len(pending) > low_water:
                    _, pending = wait(pending, return_when=FIRST_COMPLETED)
            wait(pending)
    finally:
        states = recorder.close()
    summary = CollectSummary(failed=failed)
    for state in states:
        summary.add(state)
    return summary
