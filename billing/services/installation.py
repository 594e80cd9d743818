"""Facts about this database installation, kept in the ``meta`` table.

Beyond the order-number prefix, a database remembers which gateway it belongs to (its cards are
vaulted there and nowhere else), a random ``installation_id`` that names it outside itself (the
high-water mark file of ``billing.services.watermark``), and when the engine last ran over it
(the guard of ``--now``, ``billing.domain.timetravel``). The sandbox's own database is created
and given the example catalog here, so the quickstart is one command.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.catalog.loader import load_catalog
from billing.clock import Clock
from billing.domain.payments import NONCE_ALPHABET, NONCE_LENGTH
from billing.domain.timetravel import TimeFacts
from billing.errors import ConfigError
from billing.services.catalog import apply_catalog
from billing.store import migrate
from billing.store.engine import Store
from billing.store.models import Card, Event, Meta, Plan
from billing.store.uow import UnitOfWork

GATEWAY_KEY = "gateway"
INSTALLATION_KEY = "installation_id"
LAST_RUN_KEY = "last_run_at"
SANDBOX = "sandbox"


def order_prefix(session: Session) -> str:
    """The random prefix of this database's gateway order numbers.

    The first migration sets it; if the row is missing (a restored partial dump) a new random
    one is made, which is always safe: a fresh prefix can only avoid collisions.
    """
    row = session.get(Meta, "order_prefix")
    if row is None:
        alphabet = string.ascii_uppercase + string.digits
        row = Meta(key="order_prefix", value="".join(secrets.choice(alphabet) for _ in range(6)))
        session.add(row)
        session.flush()
    return row.value


def new_nonce() -> str:
    """A fresh random part for an order, refund or card number (``NONCE_LENGTH`` characters of
    Crockford base 32, about 30 bits), so a restored database never reissues a number."""
    return "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))


def installation_id(session: Session) -> str:
    """This database's name outside itself, made on first use like the order prefix.

    It is copied with the database (a backup carries it), which is the point: a restored copy
    finds the high-water mark its original left in the state directory.
    """
    row = session.get(Meta, INSTALLATION_KEY)
    if row is None:
        row = Meta(key=INSTALLATION_KEY, value=secrets.token_hex(8))
        session.add(row)
        session.flush()
    return row.value


def ensure_installation_id(store: Store) -> str:
    """``installation_id``, committed. Several daemons starting at once on a new database race
    to make it: the losers read the winner's."""
    try:
        with UnitOfWork(store) as uow:
            name = installation_id(uow.session)
            uow.commit()
            return name
    except IntegrityError:
        with UnitOfWork(store) as uow:
            return installation_id(uow.session)


# --- which gateway a database belongs to -----------------------------------------------------


@dataclass(frozen=True)
class GatewayMark:
    """The gateway whose vault holds this database's cards: the sandbox, or one IOTPay
    merchant at one base URL (IOTPay's test and production hosts are different vaults)."""

    value: str

    @classmethod
    def sandbox(cls) -> GatewayMark:
        return cls(SANDBOX)

    @classmethod
    def iotpay(cls, base_url: str, mch_id: str) -> GatewayMark:
        return cls(f"iotpay {mch_id} {base_url.strip().rstrip('/')}/"[:200])

    @property
    def is_sandbox(self) -> bool:
        return self.value == SANDBOX

    def describe(self) -> str:
        if self.is_sandbox:
            return "the in-process sandbox (--sandbox)"
        _, mch_id, base_url = self.value.split(" ", 2)
        return f"IOTPay merchant {mch_id} at {base_url}"


def gateway_mark(session: Session) -> GatewayMark | None:
    row = session.get(Meta, GATEWAY_KEY)
    return GatewayMark(row.value) if row is not None else None


def claim_gateway(store: Store, mark: GatewayMark) -> None:
    """Refuse to pair this database with a gateway other than its own; mark it on first use.

    A card token only exists in the vault that issued it: charging a real customer's card at the
    sandbox (or the reverse) declines it as "not found", a hard decline that puts every
    subscription into dunning and emails real customers. An unmarked database that already
    holds cards got them from a real gateway (the sandbox marks its databases), so the sandbox
    may not adopt it; the real gateway may, since that is how databases made before the mark
    existed carry on.
    """
    with UnitOfWork(store) as uow:
        current = gateway_mark(uow.session)
        if current == mark:
            return
        if current is not None:
            raise ConfigError(
                f"this database belongs to {current.describe()}, not {mark.describe()}: its "
                f"cards are vaulted there only; {_where_to_go(mark)}")
        cards = uow.session.scalar(select(func.count()).select_from(Card)) or 0
        if mark.is_sandbox and cards:
            raise ConfigError(
                f"this database holds {cards} card(s) vaulted elsewhere, which the sandbox "
                f"would decline as not found; {_where_to_go(mark)}")
        uow.session.add(Meta(key=GATEWAY_KEY, value=mark.value))
        try:
            uow.commit()
        except IntegrityError:  # another process marked it at the same moment: ask again
            uow.rollback()
            claim_gateway(store, mark)


def _where_to_go(mark: GatewayMark) -> str:
    if mark.is_sandbox:
        return ("leave BILLING_DATABASE_URL unset to use the sandbox's own database "
                "(billing-sandbox.db), or point it at a database made for the sandbox")
    return ("point BILLING_DATABASE_URL at this gateway's database, or IOTPAY_BASE_URL and "
            "IOTPAY_MCH_ID at this database's gateway")


# --- the sandbox's own database --------------------------------------------------------------


def prepare_sandbox_database(store: Store, clock: Clock, plans_dir: Path) -> None:
    """Create, migrate and give the example catalog to the sandbox's own database.

    Only ever called for the sandbox's default database (``billing-sandbox.db``), never for a
    database an operator named: a real database is upgraded and given plans on purpose, by
    ``billing db upgrade`` and ``billing plans apply``, not as a side effect of a command.
    """
    if migrate.current_revision(store.engine) != migrate.head_revision(store.engine):
        migrate.upgrade(store.engine)
    with UnitOfWork(store) as uow:
        if uow.session.scalar(select(Plan.id).limit(1)) is not None:
            return
    catalog = load_catalog(plans_dir)
    with UnitOfWork(store) as uow:
        apply_catalog(uow, clock, catalog)


# --- when the engine last ran ----------------------------------------------------------------


def record_run(store: Store, at: datetime) -> None:
    """Remember the latest instant a pass or tick ran as; an earlier one never lowers it."""
    with UnitOfWork(store) as uow:
        row = uow.session.get(Meta, LAST_RUN_KEY, with_for_update=True)
        if row is None:
            uow.session.add(Meta(key=LAST_RUN_KEY, value=at.isoformat()))
        elif datetime.fromisoformat(row.value) < at:
            row.value = at.isoformat()
        else:
            return
        try:
            uow.commit()
        except IntegrityError:  # a concurrent first run inserted it: compare with theirs
            uow.rollback()
            record_run(store, at)


def time_facts(store: Store, *, wall: datetime, sandbox: bool) -> TimeFacts:
    """What ``judge_now`` needs from this database. ``sandbox``: the command uses the sandbox;
    a database marked for the sandbox counts as the sandbox whatever the command."""
    with UnitOfWork(store) as uow:
        session = uow.session
        row = session.get(Meta, LAST_RUN_KEY)
        newest = session.scalar(select(func.max(Event.at)))
        mark = gateway_mark(session)
    return TimeFacts(
        wall=wall, last_run=datetime.fromisoformat(row.value) if row is not None else None,
        newest_event=newest, sandbox=sandbox or (mark is not None and mark.is_sandbox))
