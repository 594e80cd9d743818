"""Every figure of a report as one or two SQL aggregations (SQLAlchemy Core, both backends).

The database does the counting: ``GROUP BY`` with conditional sums, and window functions
(``LAG``/``LEAD`` over each subscription's MRR points) for the MRR movements. Python only
receives a few rows per currency and month. Definitions, as the docs state them
(``docs/reports.md``); ``[start, end)`` is the range, ``end`` clipped to when the report is made:

* **invoices**: issued (``issued_at`` in range, total), paid (``paid_at`` in range, amount paid),
  failed (a *declined* attempt, soft or hard, resolved in range; set-up errors and "not sent"
  are not declines; invoice total), refunded / voided (refunds or voids that succeeded in range,
  their amounts; counted per invoice).
* **cash**: succeeded charges minus succeeded refunds and voids, each by when it succeeded.
* **MRR**: see ``billing.reports.mrr`` and ``mrr_months``.
* **dunning**: invoices whose dunning started in range, by what they were at ``end``.
* **aging**: invoices unpaid and not written off at ``end``, by days past due.

"Written off before T" is read from the audit trail: an ``uncollectible`` invoice was written off
by the first ``invoice.uncollectible`` event of its subscription after it was issued (the engine
writes off all of a subscription's open invoices at once), so a report for a past range sees the
invoice as it was then, not as it is now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    SQLColumnExpression,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from billing.domain.dunning import FinalAction
from billing.domain.invoices import InvoiceKind, InvoiceStatus, RefundKind
from billing.domain.payments import AttemptState, DeclineKind
from billing.domain.subscriptions import OpenInvoices
from billing.reports.figures import (
    AGING_BUCKETS,
    DUNNING_STAGES,
    INVOICE_OUTCOMES,
    Cash,
    Dunning,
    MrrMonth,
    PlanLine,
    Tally,
)
from billing.reports.mrr import monthly_amount_sql
from billing.reports.period import Point, ReportRange
from billing.reports.sql import covered_points, epoch_seconds, point_instant, points_table
from billing.store.models import (
    Card,
    Event,
    Invoice,
    InvoiceLine,
    PaymentAttempt,
    Plan,
    PlanVersion,
    Refund,
    Subscription,
)

WRITE_OFF_EVENT = f"invoice.{OpenInvoices.UNCOLLECTIBLE.value}"
FINAL_ACTION_EVENT = "dunning.final_action"
SUSPENDING = FinalAction.MARK_UNPAID.value
RECURRING_LINE = "subscription"
"""The invoice line kind renewal writes for the plan's price x quantity (the setup fee is
``setup_fee``)."""
PAY_NOW = "pay_now"
"""The attempt source a customer-initiated "pay now" will carry (``payment_attempts.source``,
not in the schema yet): counted as its own recovery channel as soon as the column exists."""
DECLINES = (DeclineKind.SOFT.value, DeclineKind.HARD.value)

AnySelect = Select[*tuple[Any, ...]]
Col = SQLColumnExpression[Any]
"""A column or expression, from a mapped class, an alias or a subquery."""


def _in(column: Col, r: ReportRange) -> ColumnElement[bool]:
    return and_(column >= r.start, column < r.end)


def written_off_before(status: Col, subscription_id: Col, issued_at: Col, at: Col | datetime
                       ) -> ColumnElement[bool]:
    """Whether an invoice had been written off (void, or uncollectible) before ``at``."""
    write_off = exists().where(Event.subscription_id == subscription_id,
                               Event.type == WRITE_OFF_EVENT, Event.at >= issued_at, Event.at < at)
    return or_(status == InvoiceStatus.VOID.value, and_(
        status == InvoiceStatus.UNCOLLECTIBLE.value,
        or_(subscription_id.is_(None), write_off)))


def suspended_before(paid_at: Col, subscription_id: Col, dunning_started_at: Col,
                     at: Col | datetime) -> ColumnElement[bool]:
    """Whether an invoice was, at ``at``, unpaid after dunning ended with ``mark_unpaid`` (the
    subscription suspended until paid): its period no longer counts in MRR until it is paid."""
    marked = exists().where(Event.subscription_id == subscription_id,
                            Event.type == FINAL_ACTION_EVENT, Event.at >= dunning_started_at,
                            Event.at < at, Event.data["action"].as_string() == SUSPENDING)
    return and_(dunning_started_at.is_not(None), or_(paid_at.is_(None), paid_at >= at), marked)


# --- invoices and cash ------------------------------------------------------------------------


def _sum(value: Col) -> ColumnElement[int]:
    return cast(func.coalesce(func.sum(value), 0), BigInteger)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return _sum(case((condition, 1), else_=0))


def _amount_if(condition: ColumnElement[bool], amount: Col) -> ColumnElement[int]:
    return _sum(case((condition, amount), else_=0))


def invoice_outcomes(conn: Connection, r: ReportRange) -> dict[str, dict[str, Tally]]:
    """currency -> outcome -> tally, for ``INVOICE_OUTCOMES``."""
    out: dict[str, dict[str, Tally]] = {}

    def put(currency: str, outcome: str, count: int, amount: int) -> None:
        out.setdefault(currency, {o: Tally() for o in INVOICE_OUTCOMES})[outcome] = Tally(
            int(count), int(amount))

    issued, paid = _in(Invoice.issued_at, r), and_(
        Invoice.status == InvoiceStatus.PAID.value, _in(Invoice.paid_at, r))
    rows = conn.execute(select(
        Invoice.currency, _count_if(issued), _amount_if(issued, Invoice.total),
        _count_if(paid), _amount_if(paid, Invoice.amount_paid),
    ).where(or_(issued, paid)).group_by(Invoice.currency))
    for currency, n_issued, a_issued, n_paid, a_paid in rows:
        put(currency, "issued", n_issued, a_issued)
        put(currency, "paid", n_paid, a_paid)
    declined = select(PaymentAttempt.invoice_id).where(
        PaymentAttempt.state == AttemptState.FAILED.value,
        PaymentAttempt.decline_kind.in_(DECLINES), _in(PaymentAttempt.resolved_at, r))
    failed = conn.execute(select(Invoice.currency, func.count(), _sum(Invoice.total))
                          .where(Invoice.id.in_(declined)).group_by(Invoice.currency))
    for currency, count, amount in failed:
        put(currency, "failed", count, amount)
    for currency, kind, count, amount in conn.execute(_refunds(r, by_kind=True)):
        put(currency, "refunded" if kind == RefundKind.REFUND.value else "voided", count, amount)
    return out


def _refunds(r: ReportRange, *, by_kind: bool) -> AnySelect:
    kind = Refund.kind if by_kind else literal("any")
    return (select(Refund.currency, kind, func.count(func.distinct(Refund.invoice_id)),
                   _sum(Refund.amount))
            .where(Refund.state == AttemptState.SUCCEEDED.value, _in(Refund.resolved_at, r))
            .group_by(Refund.currency, *([Refund.kind] if by_kind else [])))


def cash(conn: Connection, r: ReportRange) -> dict[str, Cash]:
    """currency -> charges that succeeded in range, refunds and voids that succeeded in range."""
    collected = {currency: amount for currency, amount in conn.execute(
        select(PaymentAttempt.currency, _sum(PaymentAttempt.amount))
        .where(PaymentAttempt.state == AttemptState.SUCCEEDED.value,
               _in(PaymentAttempt.resolved_at, r))
        .group_by(PaymentAttempt.currency))}
    refunded = {currency: amount for currency, _, _, amount
                in conn.execute(_refunds(r, by_kind=False))}
    return {c: Cash(int(collected.get(c, 0)), int(refunded.get(c, 0)))
            for c in sorted(collected.keys() | refunded.keys())}


# --- MRR ------------------------------------------------------------------------------------------


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
    one_off = (select(InvoiceLine.invoice_id, _sum(InvoiceLine.amount).label("amount"))
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
    starts = case((and_(flow.c.idx > 0, prev == 0, now > 0),
                   case((or_(flow.c.prev_idx.is_not(None), had_before), "reactivation"),
                        else_="new")), else_="-")
    last = len(points) - 1
    leaves = and_(flow.c.idx < last, or_(flow.c.next_idx.is_(None),
                                         flow.c.next_idx != flow.c.idx + 1))
    # grouped by how rows start, so the look-up runs once per row, not once per sum using it
    return (select(flow.c.idx, flow.c.currency, starts.label("starts"), _sum(now).label("mrr"),
                   _amount_if(and_(prev > 0, now > prev), now - prev).label("expansion"),
                   _amount_if(and_(prev > 0, now < prev), prev - now).label("contraction"),
                   _amount_if(leaves, now).label("churn_next"))
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
        select(pp.c.plan_id, func.count(), _sum(pp.c.mrr)).group_by(pp.c.plan_id))}
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


# --- dunning and aging ----------------------------------------------------------------------------


def _recovered_by(attempt: Any, card: Any) -> ColumnElement[str]:
    """Which way a recovered invoice was paid: the customer paying now (once attempts carry a
    source), a card added after dunning started, or else the retry schedule."""
    source = getattr(attempt, "source", None)
    whens: list[tuple[ColumnElement[bool], str]] = []
    if source is not None:
        whens.append((source == PAY_NOW, "recovered_by_pay_now"))
    whens.append((card.activated_at > Invoice.dunning_started_at, "recovered_by_new_card"))
    return case(*whens, else_="recovered_by_retry")


def dunning_funnel(conn: Connection, r: ReportRange) -> dict[str, Dunning]:
    """currency -> the invoices that entered dunning in range, by stage at the end."""
    attempt, card = aliased(PaymentAttempt), aliased(Card)
    stage = case(
        (and_(Invoice.status == InvoiceStatus.PAID.value, Invoice.paid_at < r.end),
         _recovered_by(attempt, card)),
        (written_off_before(Invoice.status, Invoice.subscription_id, Invoice.issued_at, r.end),
         "written_off"),
        else_="still_open")
    staged = (select(Invoice.currency, stage.label("stage"), Invoice.total)
              .outerjoin(attempt, and_(attempt.invoice_id == Invoice.id,
                                       attempt.state == AttemptState.SUCCEEDED.value))
              .outerjoin(card, card.gateway_card_id == attempt.gateway_card_id)
              .where(_in(Invoice.dunning_started_at, r))).subquery("staged")
    rows = conn.execute(select(staged.c.currency, staged.c.stage, func.count(),
                               _sum(staged.c.total)).group_by(staged.c.currency, staged.c.stage))
    stages: dict[str, dict[str, Tally]] = {}
    for currency, name, count, amount in rows:
        stages.setdefault(currency, {s: Tally() for s in DUNNING_STAGES})[name] = Tally(
            int(count), int(amount))
    return {c: Dunning(Tally(sum(t.count for t in s.values()), sum(t.amount for t in s.values())),
                       s) for c, s in sorted(stages.items())}


def aging(conn: Connection, r: ReportRange) -> dict[str, dict[str, Tally]]:
    """currency -> bucket -> invoices still owed at the end, by whole days past due."""
    end = r.end
    bucket = case((Invoice.due_at > end - timedelta(days=31), AGING_BUCKETS[0]),
                  (Invoice.due_at > end - timedelta(days=61), AGING_BUCKETS[1]),
                  (Invoice.due_at > end - timedelta(days=91), AGING_BUCKETS[2]),
                  else_=AGING_BUCKETS[3])
    owed = (select(Invoice.currency, bucket.label("bucket"), Invoice.total)
            .where(Invoice.issued_at < end, Invoice.due_at < end, Invoice.total > 0,
                   ~and_(Invoice.status == InvoiceStatus.PAID.value, Invoice.paid_at < end),
                   ~written_off_before(Invoice.status, Invoice.subscription_id,
                                       Invoice.issued_at, end))).subquery("owed")
    out: dict[str, dict[str, Tally]] = {}
    for currency, name, count, amount in conn.execute(
            select(owed.c.currency, owed.c.bucket, func.count(), _sum(owed.c.total))
            .group_by(owed.c.currency, owed.c.bucket)):
        out.setdefault(currency, {b: Tally() for b in AGING_BUCKETS})[name] = Tally(
            int(count), int(amount))
    return out


def currencies(conn: Connection) -> set[str]:
    """The catalog's currencies: a report shows them even when nothing happened in them."""
    return set(conn.execute(select(Plan.currency).distinct()).scalars())
