"""Webhooks to the merchant's app: endpoints, the delivery outbox, and the tick that sends it.

``queue_deliveries`` runs inside ``record_event``: when an event has a public type
(``billing.webhooks.event_types``), one ``webhook_deliveries`` row per enabled endpoint that
wants that type is added to the same session, so a delivery exists if and only if the change
was committed. Its payload is built then, from the event and the rows it names, and never
changes.

``deliver_due`` is the tick, shaped like the email outbox (``billing.services.outbox``): claim due
rows under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serialises writers), POST each outside any transaction, then record each outcome in a
short transaction of its own. Delivery is at least once: a crash between the POST and the
record sends the same body (same ``evt_`` id) again once the lease expires. A failure is
retried on ``billing.webhooks.retry``'s schedule for three days, then marked failed. When an
endpoint is unreachable or answers 5xx, all its due deliveries wait with it until its next try
instead of each costing a timeout, so one dead endpoint never holds up the others.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

import requests
from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from billing.clock import Clock
from billing.domain.timeutil import to_utc
from billing.errors import Conflict, InvalidInput, NotFound
from billing.store.engine import Store
from billing.store.models import (
    MAX_ROW_ID,
    Customer,
    Event,
    Invoice,
    PlanVersion,
    Subscription,
    WebhookDelivery,
    WebhookEndpoint,
)
from billing.store.uow import UnitOfWork
from billing.webhooks import payloads
from billing.webhooks.event_types import check_types, public_type
from billing.webhooks.retry import next_attempt
from billing.webhooks.sender import Outcome, post

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix of generated secrets, not one
URL_MAX = 2000
LEASE = timedelta(minutes=15)
"""Longer than a batch can take: ``BATCH`` deliveries at (connect + read) timeout each."""
BATCH = 20
ERROR_MAX = 500

DeliveryStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class EndpointView:
    id: int
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime
    secret: str
    """Masked, except in the answer to ``add_endpoint``: shown once, like an API key."""


@dataclass(frozen=True)
class DeliveryView:
    id: int
    event: str
    type: str
    endpoint_id: int
    status: DeliveryStatus
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryView:
        status = _status(row)
        return cls(row.id, payloads.event_id(row.event_id, row.event_key), row.type,
                   row.endpoint_id, status, row.attempts, row.last_status, row.last_error,
                   row.next_attempt_at if status == "pending" else None, row.delivered_at)


@dataclass(frozen=True)
class WebhookSummary:
    """One pass: ``remaining`` counts deliveries still due after it (leased, or over the batch)."""

    delivered: int = 0
    retrying: int = 0
    gave_up: int = 0
    waiting: int = 0
    """Not tried this pass because their endpoint had just failed: moved to its retry time."""
    remaining: int = 0


@dataclass(frozen=True)
class Claimed:
    """A leased delivery and what sending it needs, read before the claim's transaction ends."""

    id: int
    event_id: int
    event_key: str
    endpoint_id: int
    url: str
    secret: str
    payload: dict[str, object] = field(repr=False)
    attempts: int
    first_attempt_at: datetime | None


def _status(row: WebhookDelivery) -> DeliveryStatus:
    if row.delivered_at is not None:
        return "delivered"
    return "failed" if row.failed_at is not None else "pending"


def mask(secret: str) -> str:
    """``whsec_****wxyz``: enough to tell two secrets apart, too little to sign with."""
    return f"{SECRET_PREFIX}****{secret[-4:]}"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host, or ``InvalidInput`` saying what is wrong."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"webhook URL must start with http:// or https://: {url!r}")
    if not parts.hostname:
        raise InvalidInput(f"webhook URL has no host: {url!r}")
    if len(url) > URL_MAX or any(c.isspace() for c in url):
        raise InvalidInput(f"webhook URL is too long or contains spaces: {url[:80]!r}")
    return url


def check_events(events: Sequence[str]) -> list[str]:
    try:
        return check_types(events)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def shown_url(url: str) -> str:
    """The URL with any password in it (``https://user:pw@host/``) masked, for display."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:****@{netloc}").geturl()


def _view(row: WebhookEndpoint, *, reveal: bool = False) -> EndpointView:
    return EndpointView(row.id, row.url if reveal else shown_url(row.url), list(row.events),
                        row.enabled, row.created_at, row.secret if reveal else mask(row.secret))


def add_endpoint(store: Store, at: datetime, url: str, events: Sequence[str] = ()) -> EndpointView:
    """Register ``url`` for ``events`` (none: every type); the answer shows the secret in full."""
    row = WebhookEndpoint(url=check_url(url), secret=new_secret(), events=check_events(events),
                          enabled=True, created_at=to_utc(at))
    with UnitOfWork(store) as uow:
        uow.session.add(row)
        uow.commit()
        return _view(row, reveal=True)


def list_endpoints(store: Store) -> list[EndpointView]:
    """Every endpoint not removed, oldest first, secrets masked."""
    with UnitOfWork(store) as uow:
        rows = uow.session.scalars(select(WebhookEndpoint).where(
            WebhookEndpoint.enabled.is_(True)).order_by(WebhookEndpoint.id))
        return [_view(r) for r in rows]


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id) if 0 < endpoint_id <= MAX_ROW_ID else None
    if row is None or not row.enabled:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return row


def remove_endpoint(store: Store, endpoint_id: int) -> EndpointView:
    """Stop sending to the endpoint and drop its undelivered deliveries.

    The row is disabled, not deleted: a transaction that read the endpoint a moment ago (a
    charge being recorded) may still add a delivery for it, and a deleted row would make that
    insert, and with it the charge's record, fail on the foreign key. Deliveries to a disabled
    endpoint are never claimed."""
    with UnitOfWork(store) as uow:
        row = _endpoint(uow.session, endpoint_id)
        row.enabled = False
        uow.session.execute(delete(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.delivered_at.is_(None)))
        view = _view(row)
        uow.commit()
    return view


# --- Writing deliveries, in record_event's transaction -------------------------------------------

def queue_deliveries(session: Session, event: Event) -> int:
    """Add one delivery of ``event`` per endpoint that wants its public type; returns how many.

    Runs with autoflush off: the caller's half-made change must not be flushed by our reads."""
    kind = public_type(event.type, event.data)
    if kind is None:
        return 0
    with session.no_autoflush:
        endpoints = [e for e in _enabled_endpoints(session) if not e.events or kind in e.events]
        if not endpoints:
            return 0
        obj = payloads.build_object(kind, event.type, _subject(session, event), event.data)
    stored, key = payloads.envelope(kind, event.at, obj), payloads.new_event_key()
    for endpoint in endpoints:
        session.add(WebhookDelivery(event=event, endpoint_id=endpoint.id, type=kind,
                                    payload=stored, event_key=key, created_at=event.at, attempts=0,
                                    next_attempt_at=event.at))
    return len(endpoints)


def _enabled_endpoints(session: Session) -> list[WebhookEndpoint]:
    """Read once per transaction (``session.info``, dropped when it ends): a renewal batch
    records thousands of events, and the endpoints do not change under it."""
    cached: list[WebhookEndpoint] | None = session.info.get("webhook_endpoints")
    if cached is None:
        cached = list(session.scalars(select(WebhookEndpoint).where(
            WebhookEndpoint.enabled.is_(True)).order_by(WebhookEndpoint.id)))
        session.info["webhook_endpoints"] = cached
    return cached


def _subject(session: Session, event: Event) -> payloads.Subject:
    """The identifiers and currency an event names, read from the rows it points at."""
    invoice = session.get(Invoice, event.invoice_id) if event.invoice_id else None
    customer_id = event.customer_id or (invoice.customer_id if invoice else None)
    subscription_id = event.subscription_id or (invoice.subscription_id if invoice else None)
    customer = session.get(Customer, customer_id) if customer_id else None
    currency = invoice.currency if invoice else None
    if currency is None and subscription_id:
        currency = session.scalar(select(PlanVersion.currency).join(
            Subscription, Subscription.plan_version_id == PlanVersion.id)
            .where(Subscription.id == subscription_id))
    return payloads.Subject(
        customer_id=customer_id, customer_external_id=customer.external_id if customer else None,
        subscription_id=subscription_id, invoice_id=event.invoice_id,
        invoice_number=invoice.number if invoice else None, currency=currency,
        invoice_total=invoice.total if invoice else None)


# --- The tick ------------------------------------------------------------------------------------

def _due(at: datetime) -> ColumnElement[bool]:
    return (WebhookDelivery.delivered_at.is_(None) & WebhookDelivery.failed_at.is_(None)
            & (WebhookDelivery.next_attempt_at <= at))


def claim_due(store: Store, *, at: datetime, worker: str, limit: int = BATCH) -> list[Claimed]:
    """Lease up to ``limit`` due, unleased deliveries to enabled endpoints, and commit."""
    query = (
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(_due(at), WebhookEndpoint.enabled.is_(True),
               or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= at))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    with UnitOfWork(store) as uow:
        claimed = []
        for row, endpoint in uow.session.execute(query):
            row.lease_owner, row.lease_until = worker[:64], at + LEASE
            claimed.append(Claimed(row.id, row.event_id, row.event_key, endpoint.id, endpoint.url,
                                   endpoint.secret, dict(row.payload), row.attempts,
                                   row.first_attempt_at))
        uow.commit()
    return claimed


def _finish(store: Store, delivery_id: int, **values: object) -> None:
    """Record one outcome; a delivery someone already marked delivered keeps its first record."""
    stmt = (update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.delivered_at.is_(None))
            .values(lease_owner=None, lease_until=None, **values))
    with UnitOfWork(store) as uow:
        uow.session.execute(stmt)
        uow.commit()


def _endpoint_down(outcome: Outcome) -> bool:
    """No answer, or an answer saying the app itself is failing: its queue should wait."""
    return outcome.status is None or outcome.status >= 500 or outcome.status == 429


def _record(store: Store, item: Claimed, outcome: Outcome, at: datetime) -> datetime | None:
    """Write the outcome of one try; returns when it is tried next (``None``: done or given up)."""
    if outcome.delivered:
        _finish(store, item.id, delivered_at=at, last_status=outcome.status, last_error=None,
                attempts=item.attempts + 1, first_attempt_at=item.first_attempt_at or at)
        return None
    first = item.first_attempt_at or at
    later = next_attempt(first, item.attempts + 1, at)
    _finish(store, item.id, attempts=item.attempts + 1, first_attempt_at=first,
            last_status=outcome.status, last_error=outcome.error,
            next_attempt_at=later or at, failed_at=None if later else at)
    log.warning("webhook delivery %s to endpoint %s failed: %s%s", item.id, item.endpoint_id,
                outcome.error, "" if later else " (given up)")
    return later


def _hold_endpoint(store: Store, endpoint_id: int, until: datetime, at: datetime,
                   worker: str) -> int:
    """Move every due delivery of an endpoint that just failed to ``until`` (its own retry
    time), releasing the ones this worker holds: a dead endpoint's backlog then costs one try
    per backoff step, and never fills the next passes' batches ahead of live endpoints."""
    stmt = (update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, _due(at),
                   or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= at,
                       WebhookDelivery.lease_owner == worker[:64]))
            .values(next_attempt_at=until, lease_owner=None, lease_until=None)
            .returning(WebhookDelivery.id))
    with UnitOfWork(store) as uow:
        held = len(uow.session.execute(stmt).all())
        uow.commit()
    return held


def send_claimed(store: Store, clock: Clock, http: requests.Session, claimed: Sequence[Claimed],
                 *, at: datetime, worker: str) -> WebhookSummary:
    """POST each claimed delivery and record its outcome; one failing never stops the rest."""
    delivered = retrying = gave_up = waiting = 0
    held: set[int] = set()
    for item in claimed:
        if item.endpoint_id in held:
            continue  # already moved to its endpoint's retry time, and released
        try:
            sent = payloads.body(item.event_id, item.event_key, item.payload)
            outcome = post(http, item.url, item.secret, sent,
                           timestamp=int(clock.now().timestamp()))
        except Exception as exc:  # a bug in one delivery must not stop the others
            outcome = Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX])
        later = _record(store, item, outcome, at)
        if outcome.delivered:
            delivered += 1
        elif later is None:
            gave_up += 1
        else:
            retrying += 1
            if _endpoint_down(outcome):
                held.add(item.endpoint_id)
                waiting += _hold_endpoint(store, item.endpoint_id, later, at, worker)
    return WebhookSummary(delivered, retrying, gave_up, waiting)


def deliver_due(store: Store, clock: Clock, *, worker: str, at: datetime | None = None,
                http: requests.Session | None = None, limit: int = BATCH) -> WebhookSummary:
    """One webhook tick: claim due deliveries, POST them outside any transaction, record each.
    ``at`` (default: the clock) decides what is due; signatures are timed by the clock."""
    at = to_utc(at or clock.now())
    claimed = claim_due(store, at=at, worker=worker, limit=limit)
    own = http is None
    session = http or requests.Session()
    try:
        summary = send_claimed(store, clock, session, claimed, at=at, worker=worker)
    finally:
        if own:
            session.close()
    with UnitOfWork(store) as uow:
        remaining = uow.session.scalar(select(func.count(WebhookDelivery.id)).where(_due(at)))
    return WebhookSummary(summary.delivered, summary.retrying, summary.gave_up, summary.waiting,
                          int(remaining or 0))


# --- Operators: looking and retrying -------------------------------------------------------------

def list_deliveries(store: Store, *, status: DeliveryStatus | None = None,
                    endpoint_id: int | None = None, limit: int = 100) -> list[DeliveryView]:
    """Newest first."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if status == "delivered":
        query = query.where(WebhookDelivery.delivered_at.is_not(None))
    elif status == "failed":
        query = query.where(WebhookDelivery.failed_at.is_not(None))
    elif status == "pending":
        query = query.where(WebhookDelivery.delivered_at.is_(None),
                            WebhookDelivery.failed_at.is_(None))
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    with UnitOfWork(store) as uow:
        return [DeliveryView.of(row) for row in uow.session.scalars(query)]


def retry_deliveries(store: Store, at: datetime, *, delivery_id: int | None = None,
                     failed: bool = False) -> int:
    """Queue one delivery (not yet delivered) or every failed one to be sent at ``at``, with a
    fresh three days of retries; returns how many were queued."""
    if (delivery_id is None) == (not failed):
        raise InvalidInput("choose one of --delivery ID or --failed")
    requeue = dict(next_attempt_at=to_utc(at), failed_at=None, first_attempt_at=None,
                   lease_owner=None, lease_until=None)
    with UnitOfWork(store) as uow:
        if delivery_id is not None:
            row = uow.session.get(WebhookDelivery, delivery_id) if (
                0 < delivery_id <= MAX_ROW_ID) else None
            if row is None:
                raise NotFound(f"no webhook delivery {delivery_id}")
            if row.delivered_at is not None:
                raise Conflict(f"webhook delivery {delivery_id} was already delivered "
                               f"at {row.delivered_at:%Y-%m-%d %H:%M:%S} UTC")
            stmt = update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
        else:
            stmt = update(WebhookDelivery).where(WebhookDelivery.failed_at.is_not(None),
                                                 WebhookDelivery.delivered_at.is_(None))
        count = len(uow.session.execute(
            stmt.values(**requeue).returning(WebhookDelivery.id)).all())
        uow.commit()
    return count
