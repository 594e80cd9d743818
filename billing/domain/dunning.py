"""Retries and dunning as data plus pure decisions.

When an invoice's first charge fails, it takes a snapshot of its plan's retry schedule and
dunning policy (a ``DunningPlan``), so editing the YAML later never rewrites the schedule of an
invoice already in dunning. Two pure functions then answer every question:

* ``next_retry`` - after a decline, when to charge again (offsets from the first failure);
* ``decide`` - given the age of the oldest unpaid invoice, which escalation is due now, or
  whether a retry must come first.

A retry comes before each escalation: an escalation after the first fires only once an attempt
has been made since the previous escalation (unless the card is hard-declined, which cannot be
retried until it changes). Catching up after downtime therefore alternates retry, escalation,
retry, escalation, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class DunningEmail(StrEnum):
    PAYMENT_FAILED = "payment_failed"
    REMINDER = "reminder"
    FINAL_NOTICE = "final_notice"


class FinalAction(StrEnum):
    CANCEL = "cancel"
    MARK_UNPAID = "mark_unpaid"
    LEAVE_PAST_DUE = "leave_past_due"


@dataclass(frozen=True)
class DunningStep:
    """Send ``email`` once the oldest unpaid invoice is ``after`` old."""

    after: timedelta
    email: DunningEmail


@dataclass(frozen=True)
class DunningPolicy:
    """Named escalation shared by plans: ordered email steps, then a final action."""

    name: str
    steps: tuple[DunningStep, ...]
    final_after: timedelta
    final_action: FinalAction


@dataclass(frozen=True)
class DunningPlan:
    """The snapshot an invoice keeps: its plan's retry offsets and its dunning policy."""

    retry_offsets: tuple[timedelta, ...]
    steps: tuple[DunningStep, ...]
    final_after: timedelta
    final_action: FinalAction

    def to_json(self) -> dict[str, Any]:
        return {
            "retry": [int(r.total_seconds()) for r in self.retry_offsets],
            "steps": [{"after": int(s.after.total_seconds()), "email": s.email.value}
                      for s in self.steps],
            "final_after": int(self.final_after.total_seconds()),
            "final_action": self.final_action.value,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DunningPlan:
        return cls(
            retry_offsets=tuple(timedelta(seconds=s) for s in data["retry"]),
            steps=tuple(DunningStep(timedelta(seconds=s["after"]), DunningEmail(s["email"]))
                        for s in data["steps"]),
            final_after=timedelta(seconds=data["final_after"]),
            final_action=FinalAction(data["final_action"]),
        )


def next_retry(plan: DunningPlan, started_at: datetime, at: datetime) -> datetime | None:
    """When to charge again after a decline at ``at``; ``None`` once the schedule is exhausted.

    Offsets count from the first failure: with ``[1d, 3d]`` and a first failure on Jan 1, the
    retries are Jan 2 and Jan 4, whatever time each attempt took. Offsets already in the past
    (after downtime, or an extra retry before an escalation) are skipped, so a late start never
    fires a burst of retries.
    """
    for offset in plan.retry_offsets:
        when = started_at + offset
        if when > at:
            return when
    return None


class Verdict(StrEnum):
    NOTHING = "nothing"
    WAIT = "wait"
    """An attempt is in flight or a retry is due: let it finish first."""
    RETRY_FIRST = "retry_first"
    """An escalation is due but no attempt was made since the last one: retry now, then escalate."""
    ESCALATE = "escalate"


@dataclass(frozen=True)
class DunningState:
    """Where an invoice stands in dunning, as stored."""

    started_at: datetime
    steps_done: int
    final_done: bool
    escalated: bool
    """Whether any escalation has happened yet."""
    attempts_since_escalation: int
    """Charge attempts made since the last escalation (or since dunning began)."""
    attempt_open: bool
    hard_declined: bool


@dataclass(frozen=True)
class DunningDecision:
    verdict: Verdict
    email: DunningEmail | None = None
    step_index: int | None = None
    final_action: FinalAction | None = None


def decide(plan: DunningPlan, state: DunningState, at: datetime) -> DunningDecision:
    """The next dunning move for the oldest unpaid invoice at ``at``; one escalation per call.

    Worked example (steps 0d payment_failed, 7d reminder; final 14d cancel): at 7d, if no charge
    was attempted since the payment_failed email, the verdict is RETRY_FIRST; once that retry has
    failed, ESCALATE with ``reminder``.
    """
    age = at - state.started_at
    due = [i for i, s in enumerate(plan.steps) if i >= state.steps_done and s.after <= age]
    final_due = not state.final_done and plan.final_after <= age
    if not due and not final_due:
        return DunningDecision(Verdict.NOTHING)
    if state.attempt_open:
        return DunningDecision(Verdict.WAIT)
    retried = not state.escalated or state.attempts_since_escalation > 0
    if not retried and not state.hard_declined:
        return DunningDecision(Verdict.RETRY_FIRST)
    if due:
        step = plan.steps[due[0]]
        return DunningDecision(Verdict.ESCALATE, email=step.email, step_index=due[0])
    return DunningDecision(Verdict.ESCALATE, final_action=plan.final_action)
