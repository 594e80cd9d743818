"""Demo customers for ``billing daemon --sandbox --demo``: something to watch on a fresh install.

Each demo customer pays with one of the sandbox's documented test cards, so the daemon shows an
approval, a recovery after declines, a dunning run and a hard decline. Test card numbers are public
sandbox constants, not card data. The in-process sandbox forgets its vault when it stops, so on
every start the sandbox's test cards (the demo's, and any added with ``billing --sandbox cards
add-direct``) are vaulted again under their stored cardIds; a test card is recognized by its
masked number, which is unique among them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy import select

from billing.domain.cards import CardStatus
from billing.errors import BillingError
from billing.gateway.masking import mask_pan
from billing.sandbox import cards as test_cards
from billing.services.cards import add_direct
from billing.services.customers import add_customer
from billing.services.ports import Deps
from billing.services.subscriptions import create_subscription
from billing.store.models import Card, Customer
from billing.store.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoCustomer:
    external_id: str
    name: str
    card: str
    plan: str


DEMO = (
    DemoCustomer("demo-alice", "Alice Martin", test_cards.APPROVE, "starter-monthly"),
    DemoCustomer("demo-bruno", "Bruno Tremblay", test_cards.DECLINE_TWICE_THEN_APPROVE,
                 "pro-monthly"),
    DemoCustomer("demo-chloe", "Chloé Roy", test_cards.DECLINE_INSUFFICIENT_FUNDS,
                 "coffee-weekly"),
    DemoCustomer("demo-dev", "Dev Patel", test_cards.DECLINE_EXPIRED_CARD, "pro-annual"),
)
_BY_MASK = {mask_pan(card.number): card.number for card in test_cards.TEST_CARDS}


def seed_demo(deps: Deps, timezone: str) -> int:
    """Create the demo customers, cards and subscriptions that don't exist yet."""
    created = 0
    for demo in DEMO:
        with UnitOfWork(deps.store) as uow:
            if uow.session.scalar(select(Customer.id).where(
                    Customer.external_id == demo.external_id)) is not None:
                continue
            add_customer(uow, deps.clock, external_id=demo.external_id, name=demo.name,
                         email=f"{demo.external_id}@example.com", timezone=timezone)
        try:
            add_direct(deps, demo.external_id, number=SecretStr(demo.card),
                       cvv=SecretStr("123"), expiry="1230", holder=demo.name)
            with UnitOfWork(deps.store) as uow:
                create_subscription(uow, deps.clock, customer=demo.external_id, plan=demo.plan,
                                    trial_days=0)
            created += 1
        except BillingError as exc:
            log.warning("demo customer %s not fully created: %s", demo.external_id, exc)
    return created


def revault_test_cards(deps: Deps) -> int:
    """Vault the sandbox's test cards again in a fresh in-process sandbox, under their stored
    cardIds; other cards (never vaulted by a sandbox) are left alone. Returns how many."""
    with UnitOfWork(deps.store) as uow:
        rows = uow.session.execute(select(Card.gateway_card_id, Card.masked_number, Card.holder,
                                          Card.expiry)
                                   .where(Card.status == CardStatus.ACTIVE,
                                          Card.masked_number.in_(list(_BY_MASK)))).all()
    for card_id, masked, holder, expiry in rows:
        deps.gateway.cc_directaddcard(card_id=card_id, card_num=SecretStr(_BY_MASK[str(masked)]),
                                      cvv=SecretStr("123"), holder=holder or "Demo",
                                      expiry_date=expiry or "1230")
    return len(rows)
