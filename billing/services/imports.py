"""Importing subscribers from another billing system, each paid up to a date, all or nothing.

Migrating must never charge a period twice. Each row becomes an *active* subscription anchored on
its ``paid_through`` date (the first day not yet paid) with no invoice for the period the other
system already collected; its next invoice is issued on that local date (at once if that is
today or earlier in the current period). Every row is checked before anything is written and
every problem is reported with its line; one bad row imports nothing (one transaction).

Re-running a file is harmless: a row whose customer already has a subscription imported under
the same ``external_ref`` (or, for a row without one, the same plan and ``paid_through``) is
*skipped* and reported as such. The same ``external_ref`` with other terms is an error, since the
row then no longer describes what was imported. Imports are recorded as
``subscription.imported`` events, which is where these identities are looked up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from billing.clock import Clock
from billing.domain.calendar import BillingCalendar, Interval, IntervalUnit, start_of_local_day
from billing.domain.money import Money
from billing.domain.plans import check_billable
from billing.domain.starts import check_paid_through
from billing.domain.subscriptions import Status
from billing.errors import FileProblems, Problem, UserError
from billing.services.events import record_event
from billing.services.renewal import renew_subscription
from billing.services.subscriptions import find_active_card, find_plan
from billing.services.taxes import rates_for
from billing.store.models import Card, Customer, Event, Plan, PlanVersion, Subscription
from billing.store.uow import UnitOfWork

IMPORTED = "subscription.imported"


@dataclass(frozen=True)
class ImportRow:
    """One subscriber to bring over, already parsed; ``line`` is where it is in the file."""

    line: int
    customer: str
    plan: str
    paid_through: date
    quantity: int = 1
    card: str | None = None
    external_ref: str | None = None

    def identity(self) -> tuple[str, ...]:
        """What makes two rows of one customer the same subscription."""
        if self.external_ref is not None:
            return ("ref", self.external_ref)
        return ("terms", self.plan, self.paid_through.isoformat())


@dataclass(frozen=True)
class RowOutcome:
    line: int
    customer: str
    plan: str
    paid_through: str
    outcome: str
    """``imported``, ``skipped``, or with ``dry_run`` ``would import`` and ``would skip``."""
    subscription: int | None
    note: str


@dataclass(frozen=True)
class ImportReport:
    source: str
    dry_run: bool
    imported: int
    skipped: int
    rows: list[RowOutcome]


@dataclass(frozen=True)
class _Checked:
    row: ImportRow
    customer: Customer
    plan: Plan | None = None
    version: PlanVersion | None = None
    card: Card | None = None
    calendar: BillingCalendar | None = None
    previous: Event | None = None


def import_subscriptions(
    uow: UnitOfWork, clock: Clock, rows: Sequence[ImportRow], *, source: str,
    dry_run: bool = False, problems: Sequence[Problem] = (),
) -> ImportReport:
    """Check every row, then import them all in this unit of work, or raise ``FileProblems``.

    ``problems`` are mistakes already found in the file (by its parser); they are reported with
    the ones found here and, like them, stop the whole import. ``dry_run`` does everything and
    rolls it back.
    """
    now = clock.now()
    found = list(problems)
    checked = _check_rows(uow, rows, source, now, found)
    if found:
        raise FileProblems(sorted(found, key=lambda p: p.line or 0))  # stable: columns in order
    outcomes = [_import(uow, item, now, source, dry_run) for item in checked]
    if dry_run:
        uow.rollback()
    else:
        uow.commit()
    imported = sum(o.outcome in ("imported", "would import") for o in outcomes)
    return ImportReport(source, dry_run, imported, len(outcomes) - imported, outcomes)


def _check_rows(uow: UnitOfWork, rows: Sequence[ImportRow], source: str, now: datetime,
                found: list[Problem]) -> list[_Checked]:
    customers = _lock_customers(uow, rows)
    previous = _previous_imports(uow, list(customers.values()))
    seen: dict[tuple[int, tuple[str, ...]], int] = {}
    checked: list[_Checked] = []
    for row in rows:
        def problem(column: str, why: str, line: int = row.line) -> None:
            found.append(Problem(source, line, column, why))

        customer = customers.get(row.customer)
        if customer is None:
            problem("customer", f"no customer {row.customer!r}; add it first "
                                "(billing customers add)")
        else:
            key = (customer.id, row.identity())
            if key in seen:
                problem(*_duplicate(row, seen[key]))
                continue
            seen[key] = row.line
            earlier = previous.get(key)
            if earlier is not None:
                if _differs(earlier, row):
                    problem("external_ref", _changed(row, earlier))
                checked.append(_Checked(row, customer, previous=earlier))
                continue
        item = _check_terms(uow, row, customer, now, problem)
        if item is not None:
            checked.append(item)
    return checked


def _check_terms(uow: UnitOfWork, row: ImportRow, customer: Customer | None, now: datetime,
                 problem: Callable[[str, str], None]) -> _Checked | None:
    """Plan, quantity, card and paid-through date of a new row; ``None`` if any is bad.

    The plan and quantity are checked even without a customer, so one run reports them all.
    """
    try:
        plan, version = find_plan(uow, row.plan)
    except UserError as exc:
        problem("plan", str(exc))
        return None
    ok, calendar = True, None
    if customer is not None:
        calendar = BillingCalendar(row.paid_through, Interval(
            IntervalUnit(version.interval_unit), version.interval_count), customer.timezone)
        try:
            check_paid_through(calendar, now)
        except UserError as exc:
            problem("paid_through", str(exc))
            ok = False
    try:
        # The setup fee was paid in the other system: an imported subscription never owes it.
        check_billable(Money(version.price, version.currency), row.quantity,
                       taxes=rates_for(uow.session, customer.province) if customer else ())
    except UserError as exc:
        problem("quantity", str(exc))
        ok = False
    if customer is None or calendar is None:
        return None
    card = None
    try:
        card = find_active_card(uow, customer, row.card)
    except UserError as exc:
        problem("card", str(exc))
        ok = False
    return _Checked(row, customer, plan, version, card, calendar) if ok else None


def _import(uow: UnitOfWork, item: _Checked, now: datetime, source: str,
            dry_run: bool) -> RowOutcome:
    row = item.row
    base = (row.line, row.customer, row.plan, row.paid_through.isoformat())
    if item.previous is not None:
        sub_id = item.previous.subscription_id
        return RowOutcome(*base, "would skip" if dry_run else "skipped", sub_id,
                          "already imported")
    sub = _create(uow, item, now, source)
    issued = renew_subscription(uow.session, sub, now)
    note = (f"invoiced now: {issued[0].number}" if issued and not dry_run else
            "invoiced now" if issued else f"next invoice {row.paid_through}")
    return RowOutcome(*base, "would import" if dry_run else "imported",
                      None if dry_run else sub.id, note)


def _create(uow: UnitOfWork, item: _Checked, now: datetime, source: str) -> Subscription:
    """An active subscription whose period 0 starts on the paid-through date.

    The period before it, which the other system billed, is recorded as the current period: it
    tells people what was paid, and it is what keeps renewal from adding the setup fee.
    """
    assert item.plan is not None and item.version is not None and item.calendar is not None
    row, customer, calendar = item.row, item.customer, item.calendar
    paid_from = start_of_local_day(row.paid_through - calendar.interval.times(1),
                                   customer.timezone)
    sub = Subscription(
        customer_id=customer.id, plan_id=item.plan.id, plan_version_id=item.version.id,
        card_id=item.card.id if item.card else None, status=Status.ACTIVE,
        quantity=row.quantity, timezone=customer.timezone, anchor_date=row.paid_through,
        started_at=now, trial_end=None, next_period_index=0,
        next_renewal_at=calendar.boundary(0), current_period_start=paid_from,
        current_period_end=calendar.boundary(0), cancel_at_period_end=False,
        created_at=now, updated_at=now,
    )
    uow.session.add(sub)
    uow.session.flush()
    record_event(uow.session, now, IMPORTED, subscription_id=sub.id, customer_id=customer.id,
                 plan=item.plan.code, version=item.version.version,
                 paid_through=row.paid_through.isoformat(), quantity=row.quantity,
                 external_ref=row.external_ref, source=source, line=row.line)
    return sub


def _lock_customers(uow: UnitOfWork, rows: Sequence[ImportRow]) -> dict[str, Customer]:
    """The rows' customers, locked in id order so two imports of one file run one after the
    other and the second sees the first's subscriptions (and skips them)."""
    refs = sorted({r.customer for r in rows})
    found = uow.session.scalars(select(Customer).where(Customer.external_id.in_(refs))
                                .order_by(Customer.id).with_for_update())
    return {c.external_id: c for c in found}


def _previous_imports(uow: UnitOfWork, customers: list[Customer]
                      ) -> dict[tuple[int, tuple[str, ...]], Event]:
    if not customers:
        return {}
    events = uow.session.scalars(select(Event).where(
        Event.type == IMPORTED, Event.customer_id.in_([c.id for c in customers]))
        .order_by(Event.id))
    out: dict[tuple[int, tuple[str, ...]], Event] = {}
    for event in events:
        assert event.customer_id is not None
        ref = event.data.get("external_ref")
        key = ("ref", str(ref)) if ref is not None else (
            "terms", str(event.data.get("plan")), str(event.data.get("paid_through")))
        out.setdefault((event.customer_id, key), event)
    return out


def _differs(event: Event, row: ImportRow) -> bool:
    return (event.data.get("plan"), event.data.get("paid_through")) != (
        row.plan, row.paid_through.isoformat())


def _changed(row: ImportRow, earlier: Event) -> str:
    return (f"{row.external_ref!r} was already imported for {row.customer} as subscription "
            f"{earlier.subscription_id} (plan {earlier.data.get('plan')}, paid through "
            f"{earlier.data.get('paid_through')}); change that subscription instead of "
            "importing it again")


def _duplicate(row: ImportRow, first: int) -> tuple[str, str]:
    if row.external_ref is not None:
        return "external_ref", (f"{row.external_ref!r} is also on line {first} for customer "
                                f"{row.customer}; each subscription needs its own")
    return "customer", (f"the same subscription as line {first} (customer {row.customer}, "
                        f"plan {row.plan}, paid_through {row.paid_through}); give each row an "
                        "external_ref to import both")
