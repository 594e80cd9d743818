"""The schema, as SQLAlchemy 2 typed ORM models.

Money is protected by the schema itself, not only by code: unique ``mch_order_no`` and refund
numbers, one invoice per subscription, kind and period, unique invoice numbers, non-negative
amounts, at most one in-flight and at most one succeeded payment attempt per invoice (partial
unique indexes). Card data is token references only: the gateway's cardId, a masked number, type,
expiry and holder; never a full number or CVV.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from billing.domain.cards import CardStatus
from billing.domain.invoices import InvoiceKind, InvoiceStatus, RefundKind
from billing.domain.payments import IN_FLIGHT as IN_FLIGHT_STATES
from billing.domain.payments import AttemptSource, AttemptState, DeclineKind
from billing.domain.plans import MigrationPolicy
from billing.domain.subscriptions import Status
from billing.domain.taxes import PROVINCES
from billing.store.types import UTCDateTime, enum_of

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MAX_ROW_ID = 2**31 - 1
"""The largest id every backend's id columns hold: they are ``Integer``, 32-bit on PostgreSQL
(64-bit on SQLite). A larger number names no row, and querying with it fails in the driver
(``DataError`` on PostgreSQL, ``OverflowError`` past 2**63 on SQLite), so callers that take ids
from people refuse it, or treat it as not found, before they query."""

IN_FLIGHT = tuple(s.value for s in AttemptState if s in IN_FLIGHT_STATES)
ATTEMPT_STATES = tuple(s.value for s in AttemptState)
_IN_FLIGHT_SQL = "state IN (" + ", ".join(f"'{s}'" for s in IN_FLIGHT) + ")"


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


def _values(kind: type[Any]) -> tuple[str, ...]:
    return tuple(m.value for m in kind)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON,
    }


class Meta(Base):
    """Installation facts, e.g. the prefix that keeps this database's order numbers unique."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        _one_of("locale", ("en", "fr"), "locale"),
        _one_of("province", PROVINCES, "province"),
        CheckConstraint("credit_balance >= 0", name="credit_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(5), default="en")
    timezone: Mapped[str] = mapped_column(String(64))
    province: Mapped[str | None] = mapped_column(String(2))
    """Where the customer is taxed (``billing.domain.taxes.PROVINCES``); none: not taxed."""
    credit_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]

    cards: Mapped[list[Card]] = relationship(back_populates="customer", order_by="Card.id")


class Card(Base):
    __tablename__ = "cards"
    __table_args__ = (_one_of("status", _values(CardStatus), "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    gateway_card_id: Mapped[str] = mapped_column(String(30), unique=True)
    status: Mapped[CardStatus] = mapped_column(enum_of(CardStatus, 10),
                                               default=CardStatus.PENDING)
    masked_number: Mapped[str | None] = mapped_column(String(19))
    card_type: Mapped[str | None] = mapped_column(String(8))
    expiry: Mapped[str | None] = mapped_column(String(4))
    holder: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship(back_populates="cards")


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (
        _one_of("migration", _values(MigrationPolicy), "migration"),
        CheckConstraint("setup_fee IS NULL OR setup_fee >= 0", name="setup_fee_nonnegative"),
        CheckConstraint("trial_days >= 0", name="trial_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    currency: Mapped[str] = mapped_column(String(3))
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    setup_fee: Mapped[int | None] = mapped_column(BigInteger)
    retry_schedule: Mapped[list[Any]] = mapped_column(default=list)
    dunning_policy: Mapped[str] = mapped_column(String(40))
    migration: Mapped[MigrationPolicy] = mapped_column(enum_of(MigrationPolicy, 16),
                                                       default=MigrationPolicy.GRANDFATHER)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]

    versions: Mapped[list[PlanVersion]] = relationship(
        back_populates="plan", order_by="PlanVersion.version"
    )


class PlanVersion(Base):
    __tablename__ = "plan_versions"
    __table_args__ = (
        UniqueConstraint("plan_id", "version"),
        CheckConstraint("price >= 0", name="price_nonnegative"),
        CheckConstraint("interval_count >= 1", name="interval_positive"),
        _one_of("interval_unit", ("day", "week", "month", "year"), "interval_unit"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    version: Mapped[int] = mapped_column(Integer)
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    interval_unit: Mapped[str] = mapped_column(String(8))
    interval_count: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]

    plan: Mapped[Plan] = relationship(back_populates="versions")


class DunningPolicyRow(Base):
    __tablename__ = "dunning_policies"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    definition: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


SUBSCRIPTION_STATUSES = _values(Status)


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        _one_of("status", SUBSCRIPTION_STATUSES, "status"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        Index("ix_subscriptions_due", "next_renewal_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id"))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    status: Mapped[Status] = mapped_column(enum_of(Status, 10))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    timezone: Mapped[str] = mapped_column(String(64))
    anchor_date: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime]
    trial_end: Mapped[datetime | None]
    next_period_index: Mapped[int] = mapped_column(Integer, default=0)
    next_renewal_at: Mapped[datetime | None]
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    canceled_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    pending_plan_version_id: Mapped[int | None] = mapped_column(ForeignKey("plan_versions.id"))
    pending_quantity: Mapped[int | None] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


INVOICE_STATUSES = _values(InvoiceStatus)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("subscription_id", "kind", "period_start"),
        _one_of("status", INVOICE_STATUSES, "status"),
        _one_of("kind", _values(InvoiceKind), "kind"),
        CheckConstraint("total >= 0", name="total_nonnegative"),
        CheckConstraint("tax >= 0", name="tax_nonnegative"),
        CheckConstraint("total = subtotal - credit_applied + tax", name="total_adds_up"),
        CheckConstraint("amount_paid >= 0", name="paid_nonnegative"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount_paid",
                        name="refund_bounded"),
        # Only a charge of exactly what is due pays an invoice, and credits reduce only unpaid
        # ones: an invoice paid beyond its total is money taken twice, never a state to store.
        CheckConstraint("amount_paid <= total", name="paid_bounded"),
        Index("ix_invoices_collect", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    kind: Mapped[InvoiceKind] = mapped_column(enum_of(InvoiceKind, 10))
    period_index: Mapped[int | None] = mapped_column(Integer)
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    credit_applied: Mapped[int] = mapped_column(BigInteger, default=0)
    tax: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """The sum of the invoice's ``taxes``; ``total = subtotal - credit_applied + tax``."""
    total: Mapped[int] = mapped_column(BigInteger)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[InvoiceStatus] = mapped_column(enum_of(InvoiceStatus, 14),
                                                  default=InvoiceStatus.OPEN)
    issued_at: Mapped[datetime]
    due_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None]
    hard_declined: Mapped[bool] = mapped_column(Boolean, default=False)
    dunning_started_at: Mapped[datetime | None]
    dunning_plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dunning_step: Mapped[int] = mapped_column(Integer, default=0)
    dunning_final_done: Mapped[bool] = mapped_column(Boolean, default=False)
    last_escalation_at: Mapped[datetime | None]
    template_version: Mapped[str | None] = mapped_column(String(20))
    """The document templates the invoice renders with (``billing.documents``), set when it is
    issued; NULL (issued before versions were recorded) renders with ``v1``."""
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.id", cascade="all, delete-orphan"
    )
    taxes: Mapped[list[InvoiceTax]] = relationship(
        back_populates="invoice", order_by="InvoiceTax.position", cascade="all, delete-orphan"
    )


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (CheckConstraint("quantity >= 1", name="quantity_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class InvoiceTax(Base):
    """One named tax on one invoice, with the rate it was computed at: a later catalog change
    never rewrites an issued invoice."""

    __tablename__ = "invoice_taxes"
    __table_args__ = (
        UniqueConstraint("invoice_id", "name"),
        CheckConstraint("taxable >= 0", name="taxable_nonnegative"),
        CheckConstraint("amount >= 0", name="amount_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(20))
    province: Mapped[str] = mapped_column(String(2))
    rate: Mapped[str] = mapped_column(String(16))
    """The percent as an exact decimal string (``9.975``)."""
    taxable: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)

    invoice: Mapped[Invoice] = relationship(back_populates="taxes")


class TaxRateRow(Base):
    """A tax of the catalog (``taxes:`` in the plan YAML) as it applies in one province."""

    __tablename__ = "tax_rates"
    __table_args__ = (
        UniqueConstraint("province", "name"),
        _one_of("province", PROVINCES, "province"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    province: Mapped[str] = mapped_column(String(2))
    name: Mapped[str] = mapped_column(String(20))
    rate: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    """Order on invoices: the order the catalog lists the taxes in."""
    updated_at: Mapped[datetime]


class PaymentAttempt(Base):
    __tablename__ = "payment_attempts"
    __table_args__ = (
        UniqueConstraint("invoice_id", "attempt_no"),
        _one_of("state", ATTEMPT_STATES, "state"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index(
            "uq_payment_attempts_one_in_flight", "invoice_id", unique=True,
            sqlite_where=text(_IN_FLIGHT_SQL), postgresql_where=text(_IN_FLIGHT_SQL),
        ),
        Index(
            "uq_payment_attempts_one_success", "invoice_id", unique=True,
            sqlite_where=text("state = 'succeeded'"),
            postgresql_where=text("state = 'succeeded'"),
        ),
        Index("ix_payment_attempts_check", "state", "next_check_at"),
        _one_of("source", _values(AttemptSource), "source"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    mch_order_no: Mapped[str] = mapped_column(String(30), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    gateway_card_id: Mapped[str] = mapped_column(String(30))
    state: Mapped[AttemptState] = mapped_column(enum_of(AttemptState, 16),
                                                default=AttemptState.SENDING)
    pay_order_id: Mapped[str | None] = mapped_column(String(30))
    gateway_status: Mapped[int | None] = mapped_column(Integer)
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    decline_kind: Mapped[DeclineKind | None] = mapped_column(enum_of(DeclineKind, 8))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    next_check_at: Mapped[datetime | None]
    check_count: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    # Pay-now (migration 0005): who started the attempt, and until when its hosted page may be
    # paid before it counts as abandoned. A pay-now attempt has no vaulted card: its
    # ``gateway_card_id`` is "" (the customer types a card on the gateway's page).
    source: Mapped[AttemptSource] = mapped_column(
        enum_of(AttemptSource, 16), default=AttemptSource.SCHEDULED, server_default="scheduled")
    expires_at: Mapped[datetime | None]


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        _one_of("kind", _values(RefundKind), "kind"),
        _one_of("state", ATTEMPT_STATES, "state"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    payment_attempt_id: Mapped[int] = mapped_column(ForeignKey("payment_attempts.id"))
    mch_refund_no: Mapped[str] = mapped_column(String(30), unique=True)
    kind: Mapped[RefundKind] = mapped_column(enum_of(RefundKind, 8))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[AttemptState] = mapped_column(enum_of(AttemptState, 16),
                                                default=AttemptState.SENDING)
    pay_order_id: Mapped[str | None] = mapped_column(String(30))
    credit_note_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    next_check_at: Mapped[datetime | None]
    """When reconciliation looks an unresolved refund up next; moving it forward is the claim."""
    check_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class GatewayNotification(Base):
    """Every verified notify, raw, under its unique key; processed after it is acknowledged."""

    __tablename__ = "gateway_notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(100), unique=True)
    pay_order_id: Mapped[str | None] = mapped_column(String(30))
    mch_order_no: Mapped[str | None] = mapped_column(String(30), index=True)
    pay_type: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[int | None] = mapped_column(Integer)
    raw_body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class OutboxMessage(Base):
    """An email written in the same transaction as the change that caused it; sent later."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "send_after"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    template: Mapped[str] = mapped_column(String(40))
    template_version: Mapped[str] = mapped_column(String(20), default="")
    locale: Mapped[str] = mapped_column(String(5), default="en")
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    created_at: Mapped[datetime]
    send_after: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    transport: Mapped[str | None] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    attachments: Mapped[list[Any] | None]
    """What to attach, rendered at send time: ``[{"kind": "invoice", "number": "INV-..."}]``.
    A reference, not the PDF: rendering is slow and must not hold the state change's
    transaction, and the document's own template version makes every resend identical."""


class Event(Base):
    """The audit trail: one row per state change, never updated or deleted."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_subscription", "subscription_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(Integer)
    subscription_id: Mapped[int | None] = mapped_column(Integer)
    invoice_id: Mapped[int | None] = mapped_column(Integer, index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Alert(Base):
    """One row per cause that needs a person, so a cause repeating (a set-up error on every
    charge, a tick item failing on every pass) is one alert with a count, not one per time."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    """When an ``alert.*`` event was last recorded for this cause."""
    count: Mapped[int] = mapped_column(Integer, default=1)
    resolved_at: Mapped[datetime | None]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ItemFailure(Base):
    """An item (subscription, invoice, attempt, notification...) whose tick work raised: it backs
    off until ``retry_at`` while every other item goes on; the row goes away when it succeeds."""

    __tablename__ = "item_failures"
    __table_args__ = (UniqueConstraint("kind", "item_id"),
                      Index("ix_item_failures_retry", "kind", "retry_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    tick: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(40))
    item_id: Mapped[int] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    retry_at: Mapped[datetime]
    error: Mapped[str] = mapped_column(Text)


# --- Webhooks to the merchant's app (billing.services.webhooks) ---------------------------------

class WebhookEndpoint(Base):
    """A URL of the merchant's app that receives signed event POSTs. The secret is stored in
    clear because it signs (a shared secret, unlike an API key, which is only ever compared);
    it is never logged, and ``billing webhooks list`` masks it."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    events: Mapped[list[Any]] = mapped_column(default=list)
    """Public event types it wants; empty means every type."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One event for one endpoint: written in the transaction of the change (the outbox), then
    POSTed until a 2xx answer or three days of retries. ``payload`` is the event's envelope
    without its id; the id (``evt_<event id>_<event_key>``) is added at send time, identical on
    every try."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "delivered_at", "failed_at", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    event_key: Mapped[str] = mapped_column(String(16))
    """The random part of the public id, the same for every endpoint of one event."""
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_attempt_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    """Given up on after three days of retries; ``billing webhooks retry`` queues it again."""
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]

    event: Mapped[Event] = relationship()


# --- Merchant JSON API (billing.api): API keys and idempotency keys -------------------------


class ApiKey(Base):
    """A merchant's API key: only the SHA-256 of the secret is kept, so a copy of the database
    cannot call the API; ``prefix`` (the first characters) lets a person tell keys apart."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """The first response to a POST sent with an ``Idempotency-Key``, replayed for the same key.

    The row is inserted ``in_progress`` in its own transaction before the work starts, so the
    unique constraint on (api key, key) decides between two daemons; ``fingerprint`` is the
    SHA-256 of method, path and body, so the same key with another request is refused."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),
                      CheckConstraint("state IN ('in_progress', 'done')", name="state_known"))
    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
