"""Which customer email a state change queues, and what it says: one function per kind.

Each ``queue_*`` function is called by the service where the change happens, inside its
transaction (``enqueue_email`` adds the row to the same session), so the email exists if and
only if the change was committed. Each has a dedupe key naming the fact it reports, once:

* ``receipt:invoice:<id>`` - an invoice became paid by a charge (``payments.apply_outcome``).
* ``refund_issued:refund:<id>`` - a refund or void succeeded (``refunds._succeeded``).
* ``subscription_canceled:subscription:<id>`` - a subscription became canceled
  (``lifecycle.apply_event``, whatever the cause: the customer, the period end, dunning).
* ``plan_changed:subscription:<id>:<version>x<qty>:<effective>`` - a plan change was made or
  scheduled (``subscriptions.change_plan``).
* ``trial_ending:subscription:<id>:<trial end>`` - the ``trials`` tick, N days before a trial
  ends (``EngineConfig.trial_ending_notice``); re-running it queues nothing new.

Amounts and dates are formatted here, by Babel, in the customer's locale and time zone
(``billing.documents.formatting.Formatter``): the templates only place ready-made strings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing.documents.formatting import LOCALES, Formatter
from billing.domain.subscriptions import Status
from billing.errors import InvalidInput
from billing.services.alerts import raise_alert
from billing.services.isolation import ItemError
from billing.services.outbox import enqueue_email
from billing.services.ports import Deps, EngineConfig
from billing.store.models import (
    Card,
    Customer,
    Invoice,
    PaymentAttempt,
    Plan,
    PlanVersion,
    Refund,
    Subscription,
)
from billing.store.uow import UnitOfWork
from billing.templates import Sender

log = logging.getLogger(__name__)


def sender_of(config: EngineConfig) -> Sender:
    """The merchant's identity for the HTML footer."""
    return Sender(config.merchant_name, config.merchant_legal_name, config.merchant_address,
                  config.merchant_email, config.email_logo_url)


def formatter(customer: Customer, currency: str) -> Formatter:
    """Babel formatting for this customer (an unknown locale is shown in English)."""
    locale = customer.locale if customer.locale in LOCALES else "en"
    return Formatter(locale, currency, customer.timezone)


def queue(session: Session, config: EngineConfig, customer: Customer, template: str, *,
          at: datetime, key: str, context: Mapping[str, object], invoice_id: int | None = None,
          attachments: Sequence[Mapping[str, str]] = (), strict: bool = False) -> bool:
    """Queue ``template`` to ``customer`` with the merchant's name and footer; True if new.

    A customer address that is not one mailbox must never undo the change being recorded (a
    payment that settled, a refund that went through): the email is skipped and an
    ``alert.email_undeliverable`` raised. Neither may an email that cannot be rendered: it is
    skipped with an ``alert.email_render_failed`` (the error class only, never the customer's
    data). ``strict`` (dunning, card expiry: ticks that retry the item once the address or the
    template is fixed) raises instead.
    """
    full = {"merchant_name": config.merchant_name, "customer_name": customer.name, **context}
    try:
        row = enqueue_email(session, at=at, template=template, to=customer.email, context=full,
                            dedupe_key=key, customer_id=customer.id, invoice_id=invoice_id,
                            locale=customer.locale, sender=sender_of(config),
                            templates_dir=config.templates_dir, attachments=attachments)
    except InvalidInput as exc:
        if strict:
            raise
        log.warning("email %s not queued: %s", key, exc)
        raise_alert(session, at, "alert.email_undeliverable", f"email_undeliverable:{key}",
                    customer_id=customer.id, invoice_id=invoice_id, template=template,
                    why=str(exc)[:200])
        return False
    except SQLAlchemyError:
        raise  # the transaction itself is broken: nothing here can be recorded
    except Exception as exc:  # an email must never undo the money it reports
        if strict:
            raise
        # A template that cannot be rendered at all (a bug in a shipped file: a merchant's
        # broken override already falls back to it) skips the email, not the payment.
        log.error("email %s not queued: %s in template %s", key, type(exc).__name__, template)
        raise_alert(session, at, "alert.email_render_failed", f"email_render_failed:{key}",
                    customer_id=customer.id, invoice_id=invoice_id, template=template,
                    error=type(exc).__name__)
        return False
    return row is not None


def _card(session: Session, gateway_card_id: str | None) -> str | None:
    if gateway_card_id is None:
        return None
    with session.no_autoflush:  # a read of what this change does not touch: keep writes batched
        masked = session.scalar(select(Card.masked_number).where(
            Card.gateway_card_id == gateway_card_id))
    return masked or gateway_card_id


def queue_receipt(session: Session, config: EngineConfig, invoice: Invoice,
                  attempt: PaymentAttempt, at: datetime) -> bool:
    """The receipt of a paid invoice, with the invoice PDF attached when it is sent."""
    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None
    f = formatter(customer, invoice.currency)
    context = {
        "amount": f.money(attempt.amount), "invoice_number": invoice.number,
        "period": f"{f.day(invoice.period_start)} - {f.last_day(invoice.period_end)}",
        "paid_date": f.day(invoice.paid_at or at),
        "card_number": _card(session, attempt.gateway_card_id) or "",
    }
    return queue(session, config, customer, "payment_succeeded", at=at,
                 key=f"receipt:invoice:{invoice.id}", context=context, invoice_id=invoice.id,
                 attachments=[{"kind": "invoice", "number": invoice.number}])


def queue_refund_issued(session: Session, config: EngineConfig, refund: Refund,
                        invoice: Invoice, at: datetime) -> bool:
    """Money went back: the credit note is attached when the email is sent."""
    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None and refund.credit_note_number is not None
    paid = session.get(PaymentAttempt, refund.payment_attempt_id)
    f = formatter(customer, refund.currency)
    context = {
        "amount": f.money(refund.amount), "invoice_number": invoice.number,
        "credit_note_number": refund.credit_note_number,
        "refund_date": f.day(refund.resolved_at or at),
        "card_number": _card(session, paid.gateway_card_id if paid else None),
    }
    return queue(session, config, customer, "refund_issued", at=at,
                 key=f"refund_issued:refund:{refund.id}", context=context,
                 invoice_id=invoice.id,
                 attachments=[{"kind": "credit_note", "number": refund.credit_note_number}])


def _plan_label(session: Session, version: PlanVersion) -> str:
    plan = session.get(Plan, version.plan_id)
    return plan.name if plan is not None else f"plan {version.plan_id}"


def queue_subscription_canceled(session: Session, config: EngineConfig, sub: Subscription,
                                at: datetime) -> bool:
    customer = session.get(Customer, sub.customer_id)
    version = session.get(PlanVersion, sub.plan_version_id)
    assert customer is not None and version is not None
    f = formatter(customer, version.currency)
    context = {"plan_name": _plan_label(session, version),
               "canceled_date": f.day(sub.canceled_at or at)}
    return queue(session, config, customer, "subscription_canceled", at=at,
                 key=f"subscription_canceled:subscription:{sub.id}", context=context)


def queue_plan_changed(session: Session, config: EngineConfig, sub: Subscription, *,
                       old: PlanVersion, new: PlanVersion, old_quantity: int, quantity: int,
                       immediate: bool, at: datetime) -> bool:
    """A change made now, or scheduled for the period end (``sub.next_renewal_at``)."""
    customer = session.get(Customer, sub.customer_id)
    assert customer is not None
    effective = at if immediate else (sub.next_renewal_at or sub.current_period_end or at)
    f = formatter(customer, new.currency)
    old_name, new_name = _plan_label(session, old), _plan_label(session, new)
    if old.id == new.id:
        old_name, new_name = f"{old_name} x {old_quantity}", f"{new_name} x {quantity}"
    context = {"old_plan": old_name, "new_plan": new_name, "effective_date": f.day(effective),
               "amount": f.money(new.price * quantity), "immediate": immediate}
    key = (f"plan_changed:subscription:{sub.id}:{new.id}x{quantity}:"
           f"{effective.strftime('%Y%m%dT%H%M%S')}")
    return queue(session, config, customer, "plan_changed", at=at, key=key, context=context)


def _trial_ending(session: Session, config: EngineConfig, sub: Subscription,
                  at: datetime) -> bool:
    customer = session.get(Customer, sub.customer_id)
    version = session.get(PlanVersion, sub.plan_version_id)
    assert customer is not None and version is not None and sub.trial_end is not None
    card = session.get(Card, sub.card_id) if sub.card_id is not None else None
    f = formatter(customer, version.currency)
    context = {"plan_name": _plan_label(session, version),
               "trial_end_date": f.day(sub.trial_end),
               "amount": f.money(version.price * sub.quantity),
               "card_number": (card.masked_number or card.gateway_card_id) if card else None}
    return queue(session, config, customer, "trial_ending", at=at, context=context,
                 key=f"trial_ending:subscription:{sub.id}:{sub.trial_end:%Y%m%dT%H%M%S}")


@dataclass
class TrialSummary:
    queued: int = 0
    failed: list[ItemError] = field(default_factory=list)


def queue_trial_endings(deps: Deps, *, at: datetime | None = None) -> TrialSummary:
    """The ``trials`` tick: queue the trial-ending email for every trial that ends within the
    notice period (once per subscription and trial end, so any number of runs queue it once).
    A notice of 0 days turns the email off."""
    at = at or deps.clock.now()
    notice = deps.config.trial_ending_notice
    summary = TrialSummary()
    if notice.total_seconds() <= 0:
        return summary
    with UnitOfWork(deps.store) as uow:
        subs = list(uow.session.scalars(select(Subscription).where(
            Subscription.status == Status.TRIALING, Subscription.trial_end.is_not(None),
            Subscription.trial_end > at, Subscription.trial_end <= at + notice,
        ).order_by(Subscription.id)))
        summary.queued = sum(_trial_ending(uow.session, deps.config, s, at) for s in subs)
        uow.commit()
    return summary
