"""Invoices, cash, the dunning funnel and aging, each as one or two SQL aggregations.

The database does the counting (``GROUP BY`` with conditional sums), on SQLite and PostgreSQL
alike; Python receives a few rows per currency. MRR is in ``billing.reports.mrr``. Definitions,
as ``docs/reports.md`` states them; ``[start, end)`` is the range, ``end`` clipped to when the
report is made:

* **invoices**: issued (``issued_at`` in range, total), paid (``paid_at`` in range, amount paid),
  failed (a *declined* attempt, soft or hard, resolved in range; set-up errors and "not sent"
  are not declines; invoice total), refunded / voided (refunds or voids that succeeded in range,
  their amounts; counted per invoice).
* **cash**: succeeded charges minus succeeded refunds and voids, each by when it succeeded.
* **dunning**: invoices whose dunning started in range, by what they were at ``end``
  (``billing.reports.history`` says what "written off" was then).
* **aging**: invoices unpaid and not written off at ``end``, by whole days past due.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, or_, select
from sqlalchemy.orm import aliased

from billing.domain.invoices import InvoiceStatus, RefundKind
from billing.domain.payments import AttemptSource, AttemptState, DeclineKind
from billing.reports.figures import (
    AGING_BUCKETS,
    DUNNING_STAGES,
    INVOICE_OUTCOMES,
    Cash,
    Dunning,
    Tally,
)
from billing.reports.history import written_off_before
from billing.reports.period import ReportRange
from billing.reports.sql import AnySelect, amount_if, count_if, sum_of, within
from billing.store.models import Card, Invoice, PaymentAttempt, Plan, Refund

PAY_NOW = AttemptSource.PAY_NOW.value
"""The ``payment_attempts.source`` of a customer-initiated "pay now": its own recovery channel."""
DECLINES = (DeclineKind.SOFT.value, DeclineKind.HARD.value)


# --- invoices and cash ------------------------------------------------------------------------


def invoice_outcomes(conn: Connection, r: ReportRange) -> dict[str, dict[str, Tally]]:
    """currency -> outcome -> tally, for ``INVOICE_OUTCOMES``."""
    out: dict[str, dict[str, Tally]] = {}

    def put(currency: str, outcome: str, count: int, amount: int) -> None:
        out.setdefault(currency, {o: Tally() for o in INVOICE_OUTCOMES})[outcome] = Tally(
            int(count), int(amount))

    issued, paid = within(Invoice.issued_at, r), and_(
        Invoice.status == InvoiceStatus.PAID.value, within(Invoice.paid_at, r))
    rows = conn.execute(select(
        Invoice.currency, count_if(issued), amount_if(issued, Invoice.total),
        count_if(paid), amount_if(paid, Invoice.amount_paid),
    ).where(or_(issued, paid)).group_by(Invoice.currency))
    for currency, n_issued, a_issued, n_paid, a_paid in rows:
        put(currency, "issued", n_issued, a_issued)
        put(currency, "paid", n_paid, a_paid)
    declined = select(PaymentAttempt.invoice_id).where(
        PaymentAttempt.state == AttemptState.FAILED.value,
        PaymentAttempt.decline_kind.in_(DECLINES), within(PaymentAttempt.resolved_at, r))
    failed = conn.execute(select(Invoice.currency, func.count(), sum_of(Invoice.total))
                          .where(Invoice.id.in_(declined)).group_by(Invoice.currency))
    for currency, count, amount in failed:
        put(currency, "failed", count, amount)
    for currency, kind, count, amount in conn.execute(_refunds(r, by_kind=True)):
        put(currency, "refunded" if kind == RefundKind.REFUND.value else "voided", count, amount)
    return out


def _refunds(r: ReportRange, *, by_kind: bool) -> AnySelect:
    """Refunds that succeeded in range. By kind (the invoice summary), only the invoices' own
    refunds: a duplicate charge's refund gives back money the invoice never counted. As cash
    (``by_kind=False``), every refund, since ``cash`` counts the duplicate charges too."""
    kind = Refund.kind if by_kind else literal("any")
    own = Refund.payment_attempt_id.not_in(select(PaymentAttempt.id).where(
        PaymentAttempt.state == AttemptState.DUPLICATE.value))
    return (select(Refund.currency, kind, func.count(func.distinct(Refund.invoice_id)),
                   sum_of(Refund.amount))
            .where(Refund.state == AttemptState.SUCCEEDED.value, within(Refund.resolved_at, r),
                   *([own] if by_kind else []))
            .group_by(Refund.currency, *([Refund.kind] if by_kind else [])))


def cash(conn: Connection, r: ReportRange) -> dict[str, Cash]:
    """currency -> charges that succeeded in range (duplicates included: the money came in, and
    their refunds are counted going out), refunds and voids that succeeded in range."""
    collected = {currency: amount for currency, amount in conn.execute(
        select(PaymentAttempt.currency, sum_of(PaymentAttempt.amount))
        .where(PaymentAttempt.state.in_([AttemptState.SUCCEEDED.value,
                                         AttemptState.DUPLICATE.value]),
               within(PaymentAttempt.resolved_at, r))
        .group_by(PaymentAttempt.currency))}
    refunded = {currency: amount for currency, _, _, amount
                in conn.execute(_refunds(r, by_kind=False))}
    return {c: Cash(int(collected.get(c, 0)), int(refunded.get(c, 0)))
            for c in sorted(collected.keys() | refunded.keys())}


# --- dunning and aging ----------------------------------------------------------------------------


def recovered_by(attempt: Any, card: Any) -> ColumnElement[str]:
    """Which way a recovered invoice was paid: by the customer paying now (the succeeded attempt
    is a pay-now, whatever card it used), else by a card added after dunning started, else by
    the retry schedule."""
    return case((attempt.source == PAY_NOW, "recovered_by_pay_now"),
                (card.activated_at > Invoice.dunning_started_at, "recovered_by_new_card"),
                else_="recovered_by_retry")


def dunning_funnel(conn: Connection, r: ReportRange) -> dict[str, Dunning]:
    """currency -> the invoices that entered dunning in range, by stage at the end."""
    attempt, card = aliased(PaymentAttempt), aliased(Card)
    stage = case(
        (and_(Invoice.status == InvoiceStatus.PAID.value, Invoice.paid_at < r.end),
         recovered_by(attempt, card)),
        (written_off_before(Invoice.status, Invoice.subscription_id, Invoice.issued_at, r.end),
         "written_off"),
        else_="still_open")
    staged = (select(Invoice.currency, stage.label("stage"), Invoice.total)
              .outerjoin(attempt, and_(attempt.invoice_id == Invoice.id,
                                       attempt.state == AttemptState.SUCCEEDED.value))
              .outerjoin(card, card.gateway_card_id == attempt.gateway_card_id)
              .where(within(Invoice.dunning_started_at, r))).subquery("staged")
    rows = conn.execute(select(staged.c.currency, staged.c.stage, func.count(),
                               sum_of(staged.c.total)).group_by(staged.c.currency, staged.c.stage))
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
            select(owed.c.currency, owed.c.bucket, func.count(), sum_of(owed.c.total))
            .group_by(owed.c.currency, owed.c.bucket)):
        out.setdefault(currency, {b: Tally() for b in AGING_BUCKETS})[name] = Tally(
            int(count), int(amount))
    return out


def currencies(conn: Connection) -> set[str]:
    """The catalog's currencies: a report shows them even when nothing happened in them."""
    return set(conn.execute(select(Plan.currency).distinct()).scalars())
