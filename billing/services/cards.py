"""Saved cards: onboarding through the gateway's vault, and what a new card changes.

Only token references are stored: the gateway ``cardId`` we assigned, a masked number, type,
expiry and holder. The hosted flow (``cc_addcard``) never trusts the browser's unsigned redirect:
the card becomes active only after ``cc_querycard`` confirms it. The direct flow passes the number
and CVV through to ``cc_directaddcard`` as ``SecretStr`` and forgets them.

A card that becomes active is attached to the customer's live subscriptions, and every open
invoice of theirs that stopped retrying (hard decline, no card) is retried at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.domain.calendar import local_date
from billing.domain.cards import CardStatus, expiry_end
from billing.domain.invoices import InvoiceStatus
from billing.domain.subscriptions import Status
from billing.errors import Conflict, InvalidInput, NotFound
from billing.gateway import CardInfo, mask_pan
from billing.services.customers import find_customer
from billing.services.emails import queue
from billing.services.events import record_event
from billing.services.installation import new_nonce, order_prefix
from billing.services.isolation import (
    ItemError,
    clear_failures,
    not_backed_off,
    one_by_one,
)
from billing.services.links import card_return_url, update_card_url
from billing.services.ports import Deps
from billing.store.models import Card, Customer, Invoice, Subscription
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)
LIVE = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.UNPAID, Status.PAUSED)
"""Statuses whose subscriptions take a new card and get card-expiry warnings: every one that
can still be charged, now or after a resume."""


@dataclass(frozen=True)
class CardView:
    card_id: str
    customer: str
    status: str
    number: str | None
    type: str | None
    expiry: str | None
    holder: str | None


def _view(card: Card, customer: Customer) -> CardView:
    return CardView(card.gateway_card_id, customer.external_id, card.status,
                    card.masked_number, card.card_type, card.expiry, card.holder)


def _new_card(session: Session, customer: Customer, at: datetime) -> Card:
    card = Card(customer_id=customer.id, gateway_card_id=f"tmp{customer.id}-{at.timestamp()}"[:30],
                status=CardStatus.PENDING, created_at=at)
    session.add(card)
    session.flush()
    # Random part: a restored database must never hand out a cardId the gateway has bound.
    card.gateway_card_id = f"{order_prefix(session)}-C{card.id}-{new_nonce()}"
    return card


def start_card_setup(deps: Deps, customer_ref: str) -> tuple[CardView, str]:
    """Reserve a fresh cardId and open the gateway's hosted card page; returns its URL."""
    with UnitOfWork(deps.store) as uow:
        customer = find_customer(uow, customer_ref)
        card = _new_card(uow.session, customer, deps.clock.now())
        view = _view(card, customer)
        uow.commit()
    reply = deps.gateway.cc_addcard(card_id=view.card_id,
                                    return_url=card_return_url(deps.config, view.card_id))
    if not reply.ok or reply.data is None:
        raise Conflict(f"the gateway refused to open a card page: {reply.ret_msg}")
    return view, reply.data.redirect_url


def _activate(session: Session, card: Card, info: CardInfo, at: datetime) -> None:
    card.status, card.activated_at = CardStatus.ACTIVE, at
    card.masked_number = mask_pan(info.card_num) if info.card_num else card.masked_number
    card.expiry, card.holder = info.expiry_date, info.holder
    card.card_type = getattr(info, "card_type", None) or card.card_type
    record_event(session, at, "card.activated", customer_id=card.customer_id,
                 card_id=card.gateway_card_id, number=card.masked_number)
    use_new_card(session, card, at)


def use_new_card(session: Session, card: Card, at: datetime) -> int:
    """Attach ``card`` to live subscriptions; retry their stalled invoices now. Returns count."""
    subs = list(session.scalars(select(Subscription).where(
        Subscription.customer_id == card.customer_id, Subscription.status.in_(LIVE))))
    for sub in subs:
        sub.card_id = card.id
    stalled = session.scalars(select(Invoice).where(
        Invoice.customer_id == card.customer_id, Invoice.status == InvoiceStatus.OPEN,
        Invoice.next_attempt_at.is_(None) | Invoice.hard_declined.is_(True)))
    count = 0
    for invoice in stalled:
        invoice.hard_declined, invoice.next_attempt_at = False, at
        count += 1
    if count:
        record_event(session, at, "card.retry_open_invoices", customer_id=card.customer_id,
                     invoices=count)
    return count


def confirm_card(deps: Deps, card_id: str) -> CardView:
    """The browser came back from the hosted page: believe only ``cc_querycard``."""
    with UnitOfWork(deps.store) as uow:
        if uow.session.scalar(select(Card.id).where(Card.gateway_card_id == card_id)) is None:
            raise NotFound(f"no card {card_id!r}")
    reply = deps.gateway.cc_querycard(card_id=card_id)
    with UnitOfWork(deps.store) as uow:
        card = uow.session.scalar(select(Card).where(Card.gateway_card_id == card_id))
        if card is None:
            raise NotFound(f"no card {card_id!r}")
        customer = uow.session.get(Customer, card.customer_id)
        assert customer is not None
        if card.status == CardStatus.PENDING:
            if not reply.ok or reply.data is None or not reply.data.card_num:
                raise Conflict(f"the gateway does not confirm card {card_id}: {reply.ret_msg}")
            _activate(uow.session, card, reply.data, deps.clock.now())
        view = _view(card, customer)
        uow.commit()
    return view


def add_direct(deps: Deps, customer_ref: str, *, number: SecretStr, cvv: SecretStr,
               expiry: str, holder: str) -> CardView:
    """Vault a card whose number we were given (PCI DSS merchants only); store only the token."""
    digits = number.get_secret_value().replace(" ", "")
    if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= 19:
        raise InvalidInput("card number must be 12 to 19 digits")
    cvv_text = cvv.get_secret_value()
    if not (cvv_text.isascii() and cvv_text.isdigit()) or len(cvv_text) not in (3, 4):
        raise InvalidInput("CVV must be 3 or 4 digits")
    if len(expiry) != 4 or not (expiry.isascii() and expiry.isdigit()) or not (
            1 <= int(expiry[:2]) <= 12):
        raise InvalidInput("expiry must be MMYY, e.g. 0727")
    with UnitOfWork(deps.store) as uow:
        customer = find_customer(uow, customer_ref)
        card = _new_card(uow.session, customer, deps.clock.now())
        card_id = card.gateway_card_id
        uow.commit()
    reply = deps.gateway.cc_directaddcard(card_id=card_id, card_num=SecretStr(digits), cvv=cvv,
                                          holder=holder, expiry_date=expiry)
    with UnitOfWork(deps.store) as uow:
        stored = uow.session.scalar(select(Card).where(Card.gateway_card_id == card_id))
        assert stored is not None
        owner = uow.session.get(Customer, stored.customer_id)
        assert owner is not None
        if not reply.ok:
            stored.status = CardStatus.REMOVED
            uow.commit()
            raise Conflict(f"the gateway refused the card: {reply.ret_msg}")
        info = reply.data or CardInfo(card_id=card_id, card_num=mask_pan(digits),
                                      expiry_date=expiry, holder=holder)
        _activate(uow.session, stored, info, deps.clock.now())
        view = _view(stored, owner)
        uow.commit()
    return view


def list_cards(deps: Deps, customer_ref: str) -> list[CardView]:
    with UnitOfWork(deps.store) as uow:
        customer = find_customer(uow, customer_ref)
        return [_view(c, customer) for c in customer.cards]


@dataclass
class ExpiringSummary:
    queued: int = 0
    failed: list[ItemError] = field(default_factory=list)


KIND = "daily.card"


def notify_expiring_cards(deps: Deps, *, at: datetime | None = None) -> ExpiringSummary:
    """Daily check: queue a card-expiring email once per card and expiry, N days ahead. One
    transaction for all cards; if it raises, the cards are redone one by one so only the card
    at fault is skipped (and backed off)."""
    at = at or deps.clock.now()
    summary = ExpiringSummary()
    ids: list[int] = []
    try:
        with UnitOfWork(deps.store) as uow:
            session = uow.session
            cards = list(session.scalars(select(Card).where(
                Card.status == CardStatus.ACTIVE, Card.expiry.is_not(None),
                not_backed_off(KIND, Card.id, at),
                Card.id.in_(select(Subscription.card_id).where(
                    Subscription.status.in_(LIVE)))).order_by(Card.id)))
            ids = [c.id for c in cards]
            queued = sum(_warn_if_expiring(session, deps, card, at) for card in cards)
            clear_failures(session, KIND, ids, at)
            uow.commit()
        summary.queued = queued
    except Exception:
        if not ids:
            raise
        log.exception("card expiry check failed; one card at a time")
        done, summary.failed = one_by_one(
            deps, "daily", KIND, ids, at,
            lambda session, card_id: _warn_one(session, deps, card_id, at))
        summary.queued = sum(done)
    return summary


def _warn_one(session: Session, deps: Deps, card_id: int, at: datetime) -> int:
    card = session.get(Card, card_id)
    return 0 if card is None else _warn_if_expiring(session, deps, card, at)


def _warn_if_expiring(session: Session, deps: Deps, card: Card, at: datetime) -> int:
    """Queue the card-expiring email for ``card`` if it is due; 1 if queued now."""
    end = expiry_end(card.expiry or "")
    customer = session.get(Customer, card.customer_id)
    if end is None or customer is None:
        return 0
    if not local_date(at, customer.timezone) >= end - deps.config.card_expiry_notice:
        return 0
    context = {
        "card_number": card.masked_number or card.gateway_card_id,
        "expiry": f"{card.expiry[:2]}/20{card.expiry[2:]}" if card.expiry else "",
        "update_card_url": update_card_url(deps.config, customer.id, at),
    }
    if not queue(session, deps.config, customer, "card_expiring", at=at, context=context,
                 key=f"card_expiring:{card.id}:{card.expiry}", strict=True):
        return 0
    record_event(session, at, "card.expiring_notice", customer_id=customer.id,
                 card_id=card.gateway_card_id, expiry=card.expiry)
    return 1
