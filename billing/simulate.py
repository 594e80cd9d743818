"""``billing simulate``: what the catalog will do until a date, without touching anything real.

The stored state (catalog, customers, cards, subscriptions, invoices...) is copied row for row into
a throwaway SQLite database, every card is vaulted in a throwaway in-process sandbox as the
always-approving test card, and the engine runs one pass per day on a fixed clock. The events the
copy records after "now" are the forecast. The real database and gateway are never written to.
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, func, insert, select

from billing.clock import Clock, FixedClock
from billing.daemon.ticks import run_once
from billing.domain.calendar import start_of_local_day
from billing.domain.cards import CardStatus
from billing.services.ports import Deps, EngineConfig
from billing.settings import Settings
from billing.store import migrate
from billing.store.engine import Store, make_engine
from billing.store.migrate import require_current
from billing.store.models import Base, Card, Customer, Event, Meta
from billing.store.uow import UnitOfWork

SHOWN = ("invoice.issued", "payment.succeeded", "payment.declined", "payment.no_card",
         "dunning.email_queued", "dunning.final_action", "subscription.status_changed",
         "subscription.plan_switched", "subscription.reanchored", "card.expiring_notice")


NOT_COPIED = frozenset({Meta.__tablename__, "webhook_endpoints", "webhook_deliveries"})
"""Tables a simulation leaves behind: with no webhook endpoints, what it pretends happened is
never POSTed to the merchant's real app."""


def copy_database(source: Engine, target: Engine) -> None:
    """Copy every table's rows, parents first, keeping ids."""
    with source.connect() as src, target.begin() as dst:
        for table in Base.metadata.sorted_tables:
            if table.name in NOT_COPIED:
                continue
            rows = [dict(r._mapping) for r in src.execute(select(table))]
            if rows:
                dst.execute(insert(table), rows)


def _describe(event: Event) -> str:
    data = event.data
    if event.type == "subscription.status_changed":
        return f"{data.get('before')} -> {data.get('after')}"
    keys = ("number", "total", "reason", "email", "action", "mch_order_no", "new_anchor")
    return ", ".join(f"{k}={data[k]}" for k in keys if k in data)


def simulate(settings: Settings, clock: Clock, until: date, *,
             subscription: int | None = None) -> list[dict[str, Any]]:
    """Run the engine day by day on a copy; return the timeline of what would happen."""
    from billing.sandbox import cards as test_cards
    from billing.sandbox.testing import running_sandbox

    start = clock.now()
    real = make_engine(settings.database_url)
    require_current(real)
    with tempfile.TemporaryDirectory() as tmp:
        copy = make_engine(f"sqlite:///{Path(tmp) / 'simulation.db'}")
        migrate.upgrade(copy)
        copy_database(real, copy)
        real.dispose()
        sim_clock = FixedClock(start)
        with running_sandbox(clock=sim_clock) as sandbox, sandbox.client() as gateway:
            deps = Deps(Store(copy), gateway, sim_clock,
                        EngineConfig(public_url="http://127.0.0.1:9", worker="simulate"))
            with UnitOfWork(deps.store) as uow:
                vault = list(uow.session.scalars(
                    select(Card).where(Card.status == CardStatus.ACTIVE)))
                copied = uow.session.scalar(select(func.max(Event.id))) or 0
            for card in vault:
                gateway.cc_directaddcard(card_id=card.gateway_card_id,
                                         card_num=SecretStr(test_cards.APPROVE),
                                         cvv=SecretStr("123"), holder=card.holder or "Card",
                                         expiry_date=card.expiry or "1230")
            at = start
            end = start_of_local_day(until + timedelta(days=1), settings.timezone)
            while at < end:
                run_once(deps, at=at)
                at = min(at + timedelta(days=1), end)
                sim_clock.set(at)
            timeline = _timeline(deps, copied, subscription)
        copy.dispose()
    return timeline


def _timeline(deps: Deps, after_id: int, subscription: int | None) -> list[dict[str, Any]]:
    """The events the simulation itself recorded (ids after the copied ones)."""
    with UnitOfWork(deps.store) as uow:
        query = select(Event).where(Event.id > after_id, Event.type.in_(SHOWN)).order_by(Event.id)
        if subscription is not None:
            query = query.where(Event.subscription_id == subscription)
        names = dict(uow.session.execute(select(Customer.id, Customer.external_id)).all())
        return [{"date": e.at.date().isoformat(), "subscription": e.subscription_id,
                 "customer": names.get(e.customer_id or 0, ""), "what": e.type,
                 "detail": _describe(e)} for e in uow.session.scalars(query)]
