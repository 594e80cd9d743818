"""The figures of a report, as plain typed values: what the queries return and renderers read.

Amounts are integer minor units of the figure's currency; renderers format them with
``billing.domain.money.Money``. Every money figure is per currency (IOTPay merchants bill in
CAD today, but nothing here assumes one currency).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from billing.reports.period import ReportRange

INVOICE_OUTCOMES = ("issued", "paid", "failed", "refunded", "voided")
RECOVERY_CHANNELS = ("recovered_by_retry", "recovered_by_new_card", "recovered_by_pay_now")
DUNNING_STAGES = (*RECOVERY_CHANNELS, "still_open", "written_off")
"""What became of the invoices that entered dunning, as of the end of the range; every invoice
is in exactly one stage, so the stages add up to ``entered``."""
AGING_BUCKETS = ("0-30", "31-60", "61-90", "90+")
MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation")


@dataclass(frozen=True)
class Tally:
    """How many, and how much money (minor units)."""

    count: int = 0
    amount: int = 0


@dataclass(frozen=True)
class Cash:
    """Money that moved in the range: succeeded charges minus succeeded refunds and voids."""

    collected: int = 0
    refunded: int = 0

    @property
    def net(self) -> int:
        return self.collected - self.refunded


@dataclass(frozen=True)
class MrrMonth:
    """MRR at the start and end of one month of the range, and the movements between them.

    ``end == start + new + expansion + reactivation - contraction - churn``, to the cent: every
    subscription's monthly amount is rounded once and every total is an exact sum of those.
    """

    month: str
    start: int
    end: int
    new: int = 0
    expansion: int = 0
    contraction: int = 0
    churn: int = 0
    reactivation: int = 0

    def movement(self, name: str) -> int:
        value: int = getattr(self, name)
        return value


@dataclass(frozen=True)
class PlanLine:
    """Subscriptions of one plan at the end of the range."""

    code: str
    name: str
    currency: str
    active: int
    """Counted in MRR at the end (a renewal invoice's period contains it, not canceled)."""
    trialing: int
    mrr: int


@dataclass(frozen=True)
class Dunning:
    """The funnel of invoices that entered dunning in the range, per stage."""

    entered: Tally
    stages: dict[str, Tally]

    @property
    def recovered(self) -> Tally:
        tallies = [self.stages.get(c, Tally()) for c in RECOVERY_CHANNELS]
        return Tally(sum(t.count for t in tallies), sum(t.amount for t in tallies))

    @property
    def recovery_rate(self) -> Fraction | None:
        """Recovered invoices over invoices that entered dunning; ``None`` when none did."""
        if self.entered.count == 0:
            return None
        return Fraction(self.recovered.count, self.entered.count)


@dataclass(frozen=True)
class Report:
    """Every figure of one range, and how long each took to compute (seconds)."""

    range: ReportRange
    currencies: tuple[str, ...]
    invoices: dict[str, dict[str, Tally]]
    """currency -> outcome (``INVOICE_OUTCOMES``) -> tally."""
    cash: dict[str, Cash]
    mrr: dict[str, list[MrrMonth]]
    plans: list[PlanLine]
    dunning: dict[str, Dunning]
    aging: dict[str, dict[str, Tally]]
    """currency -> bucket (``AGING_BUCKETS``) -> tally."""
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    def mrr_at_end(self, currency: str) -> int:
        months = self.mrr.get(currency, [])
        return months[-1].end if months else 0

    def mrr_at_start(self, currency: str) -> int:
        months = self.mrr.get(currency, [])
        return months[0].start if months else 0
