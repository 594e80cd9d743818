"""Monthly recurring revenue: what one renewal invoice is worth per month, exactly.

A renewal invoice's recurring lines (kind ``subscription``: price x quantity, before any credit
and without the setup fee) bill one period. Its *monthly amount* is that sum scaled to an average
month (``AVERAGE_MONTH_SECONDS``, 365.2425 days / 12) with exact fractions and rounded once, half
up, to a minor unit.

The scale is the plan's **nominal** interval, not the period's actual seconds. Scaling by actual
seconds would make a 19.00-a-month plan worth 20.65 in February and 18.66 in a 31-day month, and
every subscription would show an expansion or a contraction each month without anyone changing
anything. So a monthly period counts as one month whatever its days, a yearly one as twelve, a
week as 7 / 30.436875 of a month. The interval is the subscription's plan version's; when the
period's length does not fit that interval (the subscription switched to a plan with another
interval after the invoice was issued), the period's actual seconds are used instead.

``monthly_amount`` is the definition; ``monthly_amount_sql`` computes the same thing in SQL for
every invoice at once, and a test holds the two equal.

MRR at an instant T is, per subscription, the monthly amount of its renewal invoice whose period
holds the last moment before T (``period_start < T <= period_end``), unless the subscription was
canceled before T, or that invoice had been written off or its subscription suspended by dunning
before T (``billing.reports.history``). It is measured at the report's points (the start of
the range and the end of each month), one row per subscription and point, and the movements
between two points come from ``LAG``/``LEAD`` over each subscription's rows (``mrr_months``).

>>> monthly_amount(1900, 28 * 86400, "month", 1), monthly_amount(1900, 31 * 86400, "month", 1)
(1900, 1900)
>>> monthly_amount(49000, 365 * 86400, "year", 1)  # 490.00 a year: 40.83 a month
4083
>>> monthly_amount(1850, 7 * 86400, "week", 1)  # 18.50 a week: 18.50 x 30.436875 / 7
8044
>>> monthly_amount(1900, 30 * 86400, "year", 1)  # a monthly period left by a switch to yearly
1928
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from fractions import Fraction

from sqlalchemy import (
    ColumnElement,
    Connection,
    SQLColumnExpression,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from billing.domain.invoices import InvoiceKind, InvoiceStatus
from billing.domain.money import round_half_up
from billing.reports.figures import MrrMonth, PlanLine
from billing.reports.history import suspended_before, written_off_before
from billing.reports.period import Point, ReportRange
from billing.reports.sql import (
    AnySelect,
    Col,
    amount_if,
    covered_points,
    epoch_seconds,
    half_up_div,
    point_instant,
    points_table,
    sum_of,
)
from billing.store.models import Invoice, InvoiceLine, Plan, PlanVersion, Subscription

AVERAGE_MONTH_SECONDS = 2_629_746
"""365.2425 days (the Gregorian average year) / 12, in seconds: exactly 30.436875 days."""
DAY = 86_400
_SECONDS = {"week": 7 * DAY, "day": DAY}
RECURRING_LINE = "subscription"
"""The invoice line kind renewal writes for the plan's price x quantity (the setup fee is
``setup_fee``)."""


def period_days(seconds: int) -> int:
    """Whole local days in a period: a DST change moves its length by an hour, never a day."""
    return (seconds + DAY // 2) // DAY


def fits(unit: str, count: int, seconds: int) -> bool:
    """Whether a period of ``seconds`` can be one interval of ``count`` x ``unit``."""
    days = period_days(seconds)
    if unit == "month":
        return 28 * count <= days <= 31 * count
    if unit == "year":
        return 365 * count <= days <= 366 * count
    return days * DAY == _SECONDS.get(unit, -1) * count


def monthly_ratio(unit: str, count: int, seconds: int) -> Fraction:
    """How many months one period is worth (see the module docstring)."""
    if seconds <= 0:
        return Fraction(0)
    if fits(unit, count, seconds):
        if unit == "month":
            return Fraction(count)
        if unit == "year":
            return Fraction(12 * count)
        return Fraction(_SECONDS[unit] * count, AVERAGE_MONTH_SECONDS)
    return Fraction(seconds, AVERAGE_MONTH_SECONDS)


def monthly_amount(amount: int, seconds: int, unit: str, count: int) -> int:
    """``amount`` for one period, per average month, in minor units (one rounding step)."""
    ratio = monthly_ratio(unit, count, seconds)
    return 0 if ratio == 0 else round_half_up(Fraction(amount) / ratio)


def monthly_amount_sql(amount: ColumnElement[int], seconds: ColumnElement[int],
                       unit: SQLColumnExpression[str], count: SQLColumnExpression[int]
                       ) -> ColumnElement[int]:
    """``monthly_amount`` as one SQL expression over integer columns (exact integer arithmetic:
    ``amount / ratio`` is ``amount * den / num`` rounded half up by ``half_up_div``)."""
    days = (seconds + DAY // 2) // DAY
    avg = literal(AVERAGE_MONTH_SECONDS)
    return case(
        (seconds <= 0, literal(0)),
        ((unit == "month") & days.between(count * 28, count * 31), half_up_div(amount, count)),
        ((unit == "year") & days.between(count * 365, count * 366),
         half_up_div(amount, count * 12)),
        ((unit == "week") & (days == count * 7),
         half_up_div(amount * avg, count * _SECONDS["week"])),
        ((unit == "day") & (days == count), half_up_div(amount * avg, count * DAY)),
        else_=half_up_div(amount * avg, seconds),
    )


def _point_index(instant: Col, instants: Sequence[datetime], *, after: bool) -> ColumnElement[int]:
    """Which point an instant falls at, by comparison with the few points of the report: the
    first point after it (``after``), or the last point at or before it. A CASE over a few dozen
    bound instants per row costs far less than joining every invoice with every point."""
    if after:
        return case(*((instant < at, literal(i)) for i, at in enumerate(instants)),
                    else_=literal(len(instants)))
    return case(*((instant < at, literal(i - 1)) for i, at in enumerate(instants)),
                else_=literal(len(instants) - 1))


def _recurring(instants: Sequence[datetime]) -> AnySelect:
    """Renewal invoices whose period may hold a point, each with its monthly amount, its
    subscription's plan and cancellation, and the points it holds: ``first_idx``..``last_idx``
    (none when ``first_idx > last_idx``).

    The recurring amount is the subtotal less the invoice's other lines: an invoice's subtotal
    is the sum of its lines (``invoicing.draft_invoice``), and lines other than the plan's
    (setup fees) are few, so this joins a few thousand lines instead of one per invoice. The
    monthly amount needs the interval of the subscription's plan version, so subscriptions and
    versions are joined here, once per invoice, by their keys."""
    one_off = (select(InvoiceLine.invoice_id, sum_of(InvoiceLine.amount).label("amount"))
               .where(InvoiceLine.kind != RECURRING_LINE)
               .group_by(InvoiceLine.invoice_id)).subquery("one_off_lines")
    amount = Invoice.subtotal - func.coalesce(one_off.c.amount, 0)
    seconds = epoch_seconds(Invoice.period_end) - epoch_seconds(Invoice.period_start)
    monthly = monthly_amount_sql(amount, seconds, PlanVersion.interval_unit,
                                 PlanVersion.interval_count)
    return (select(Invoice.subscription_id, Invoice.currency, Invoice.status, Invoice.issued_at,
                   Invoice.paid_at, Invoice.dunning_started_at, Subscription.plan_id,
                   Subscription.canceled_at, monthly.label("mrr"),
                   _point_index(Invoice.period_start, instants, after=True).label("first_idx"),
                   _point_index(Invoice.period_end, instants, after=False).label("last_idx"))
            .outerjoin(one_off, one_off.c.invoice_id == Invoice.id)
            .join(Subscription, Subscription.id == Invoice.subscription_id)
            .join(PlanVersion, PlanVersion.id == Subscription.plan_version_id)
            .where(Invoice.kind == InvoiceKind.RENEWAL.value,
                   Invoice.status != InvoiceStatus.VOID.value,
                   Invoice.period_end >= instants[0], Invoice.period_start < instants[-1]))


def mrr_points(instants: Sequence[datetime], dialect: str, *, by_plan: bool = False
               ) -> AnySelect:
    """One row per (point, subscription) counted in MRR at that point: ``idx, subscription_id,
    currency, mrr`` (and ``plan_id`` with ``by_plan``).

    A subscription counts at instant T with the monthly amount of its renewal invoice whose
    period holds the last moment before T (``period_start < T <= period_end``), unless it was
    canceled before T, or that invoice had been written off before T, or was left unpaid by a
    dunning that suspended the subscription (``mark_unpaid``) before T.
    """
    # Planned on its own (MATERIALIZED): flattened into this query, PostgreSQL joined the
    # points with the subscriptions first and every invoice with 23 of those (bench/README.md).
    rec = _recurring(instants).cte("recurring").prefix_with("MATERIALIZED")
    cov = covered_points(rec, rec.c.first_idx, rec.c.last_idx, instants, dialect)
    at = point_instant(cov.c.idx, instants)
    keys = [cov.c.subscription_id, cov.c.idx, cov.c.currency, *([cov.c.plan_id] * by_plan)]
    return (select(*keys, func.max(cov.c.mrr).label("mrr"))
            .where(or_(cov.c.canceled_at.is_(None), cov.c.canceled_at >= at),
                   ~written_off_before(cov.c.status, cov.c.subscription_id, cov.c.issued_at, at),
                   ~suspended_before(cov.c.paid_at, cov.c.subscription_id,
                                     cov.c.dunning_started_at, at))
            .group_by(*keys))


def _movements(points: Sequence[Point], dialect: str) -> AnySelect:
    """Per point and currency: MRR, and the movements since the previous point.

    Each subscription's points are ordered with ``LAG``/``LEAD``: its previous value counts only
    if it was present at the point just before (``prev_idx = idx - 1``), and a subscription
    absent from the next point churns its whole amount there (``churn_next``, moved one point
    on by the caller). Starting from nothing is *new* if the subscription had no earlier renewal
    invoice with an amount, else a *reactivation* (back after a pause, an unpaid spell or a
    written-off period). That look-up runs only for rows that start from nothing and were not
    already present at an earlier point of the range.
    """
    pp = mrr_points([p.at for p in points], dialect).subquery("per_point")
    sub, idx = pp.c.subscription_id, pp.c.idx
    flow = select(pp.c.idx, pp.c.subscription_id, pp.c.currency, pp.c.mrr,
                  func.lag(idx).over(partition_by=sub, order_by=idx).label("prev_idx"),
                  func.lag(pp.c.mrr).over(partition_by=sub, order_by=idx).label("prev_mrr"),
                  func.lead(idx).over(partition_by=sub, order_by=idx).label("next_idx"),
                  ).subquery("flow")
    before = points_table([p.at for p in points], "before")
    earlier = aliased(Invoice)
    had_before = exists().where(
        earlier.subscription_id == flow.c.subscription_id,
        earlier.kind == InvoiceKind.RENEWAL.value, earlier.period_start < before.c.at,
        earlier.status != InvoiceStatus.VOID.value, earlier.subtotal > 0)
    prev = case((flow.c.prev_idx == flow.c.idx - 1, flow.c.prev_mrr), else_=0)
    now = flow.c.mrr
    back = and_(flow.c.prev_idx.is_not(None), flow.c.prev_idx != flow.c.idx - 1)
    starts = case((and_(flow.c.idx > 0, prev == 0, now > 0),
                   case((or_(back, had_before), "reactivation"), else_="new")), else_="-")
    last = len(points) - 1
    leaves = and_(flow.c.idx < last, or_(flow.c.next_idx.is_(None),
                                         flow.c.next_idx != flow.c.idx + 1))
    # grouped by how rows start, so the look-up runs once per row, not once per sum using it
    return (select(flow.c.idx, flow.c.currency, starts.label("starts"), sum_of(now).label("mrr"),
                   amount_if(and_(prev > 0, now > prev), now - prev).label("expansion"),
                   amount_if(and_(prev > 0, now < prev), prev - now).label("contraction"),
                   amount_if(leaves, now).label("churn_next"))
            .select_from(flow.outerjoin(before, before.c.idx == flow.c.idx - 1))
            .group_by(flow.c.idx, flow.c.currency, starts))


def mrr_months(conn: Connection, r: ReportRange) -> dict[str, list[MrrMonth]]:
    """currency -> one ``MrrMonth`` per month of the range."""
    by: dict[str, dict[int, dict[str, int]]] = {}
    for row in conn.execute(_movements(r.points, conn.dialect.name)).mappings():
        sums = by.setdefault(row["currency"], {}).setdefault(int(row["idx"]), {})
        for key in ("mrr", "expansion", "contraction", "churn_next"):
            sums[key] = sums.get(key, 0) + int(row[key])
        if row["starts"] in ("new", "reactivation"):
            sums[row["starts"]] = sums.get(row["starts"], 0) + int(row["mrr"])
    out: dict[str, list[MrrMonth]] = {}
    for currency, rows in sorted(by.items()):
        def at(i: int, key: str, rows: dict[int, dict[str, int]] = rows) -> int:
            return rows.get(i, {}).get(key, 0)
        out[currency] = [MrrMonth(
            point.month, start=at(i - 1, "mrr"), end=at(i, "mrr"), new=at(i, "new"),
            expansion=at(i, "expansion"), contraction=at(i, "contraction"),
            churn=at(i - 1, "churn_next"), reactivation=at(i, "reactivation"))
            for i, point in enumerate(r.points) if i > 0]
    return out


def plan_lines(conn: Connection, r: ReportRange) -> list[PlanLine]:
    """Subscriptions per plan at the end of the range: counted in MRR, and still in trial."""
    pp = mrr_points([r.end], conn.dialect.name, by_plan=True).subquery("at_end")
    active = {plan: (int(n), int(mrr)) for plan, n, mrr in conn.execute(
        select(pp.c.plan_id, func.count(), sum_of(pp.c.mrr)).group_by(pp.c.plan_id))}
    trialing = {plan: n for plan, n in conn.execute(
        select(Subscription.plan_id, func.count())
        .where(Subscription.trial_end.is_not(None), Subscription.started_at < r.end,
               Subscription.trial_end > r.end,
               or_(Subscription.canceled_at.is_(None), Subscription.canceled_at >= r.end))
        .group_by(Subscription.plan_id))}
    ids = active.keys() | trialing.keys()
    plans = conn.execute(select(Plan.id, Plan.code, Plan.name, Plan.currency)
                         .where(Plan.id.in_(ids)).order_by(Plan.code)).all()
    return [PlanLine(code, name, currency, active.get(pid, (0, 0))[0],
                     int(trialing.get(pid, 0)), active.get(pid, (0, 0))[1])
            for pid, code, name, currency in plans]
