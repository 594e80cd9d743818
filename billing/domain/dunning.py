"""Retries and dunning as data plus pure decisions.

When an invoice's first charge fails, it takes a snapshot of its plan's retry schedule and
dunning policy (a ``DunningPlan``), so editing the YAML later never rewrites the schedule of an
invoice already in dunning. Two pure functions then answer every question:

* ``next_retry`` - after a decline, when to charge again (offsets from the first failure);
* ``decide`` - given the age of the oldest unpaid invoice, which escalation is due now.

The retry schedule is the whole list of retries: card networks fine merchants who retry more
than they said, so no escalation ever adds a charge of its own. The one exception is explicit:
a policy whose final action says ``last_try: true`` gets one more charge when the final action
comes due, if none was made since, before the final action runs.
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
    last_try: bool = False


@dataclass(frozen=True)
class DunningPlan:
    """The snapshot an invoice keeps: its plan's retry offsets and its dunning policy."""

    retry_offsets: tuple[timedelta, ...]
    steps: tuple[DunningStep, ...]
    final_after: timedelta
    final_action: FinalAction
    last_try: bool = False
    """One more charge when the final action comes due, if none was made since it came due."""

    def to_json(self) -> dict[str, Any]:
        return {
            "retry": [int(r.total_seconds()) for r in self.retry_offsets],
            "steps": [{"after": int(s.after.total_seconds()), "email": s.email.value}
                      for s in self.steps],
            "final_after": int(self.final_after.total_seconds()),
            "final_action": self.final_action.value,
            "last_try": self.last_try,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DunningPlan:
        return cls(
            retry_offsets=tuple(timedelta(seconds=s) for s in data["retry"]),
            steps=tuple(DunningStep(timedelta(seconds=s["after"]), DunningEmail(s["email"]))
                        for s in data["steps"]),
            final_after=timedelta(seconds=data["final_after"]),
            final_action=FinalAction(data["final_action"]),
            last_try=bool(data.get("last_try", False)),
        )


CATCH_UP_GAP = timedelta(hours=1)
"""A retry whose time passed while a decline was unknown is made this long after the decline is
learned: an answer settled late (a lost reply, a re-send of the same order) is never followed by
another charge seconds later."""


def next_retry(plan: DunningPlan, started_at: datetime, last_attempt_at: datetime,
               at: datetime) -> datetime | None:
    """When to charge again, at ``at``, after the attempt created at ``last_attempt_at`` failed;
    ``None`` once the schedule is exhausted.

    Offsets count from the first failure: with ``[1d, 3d]`` and a first failure on Jan 1, the
    retries are Jan 2 and Jan 4. Each retry uses up the first offset after the attempt before
    it, so an invoice is never charged more often than the schedule lists, however late a
    decline becomes known. An offset already past when the decline is learned (an outage, a
    lost answer settled by a query or a re-send) is charged ``CATCH_UP_GAP`` later, once; the
    offsets it overtook are skipped, so a late start never fires a burst of retries.
    """
    for offset in plan.retry_offsets:
        when = started_at + offset
        if when > last_attempt_at:
            return when if when > at else at + CATCH_UP_GAP
    return None


class Verdict(StrEnum):
    NOTHING = "nothing"
    WAIT = "wait"
    """A charge is in flight or a scheduled retry is due now: let it finish first."""
    RETRY_FIRST = "retry_first"
    """The final action is due and the policy asks for a last try that has not been made."""
    ESCALATE = "escalate"


@dataclass(frozen=True)
class DunningState:
    """Where an invoice stands in dunning, as stored."""

    started_at: datetime
    steps_done: int
    final_done: bool
    attempt_open: bool
    hard_declined: bool
    last_attempt_at: datetime | None = None


@dataclass(frozen=True)
class DunningDecision:
    verdict: Verdict
    email: DunningEmail | None = None
    step_index: int | None = None
    final_action: FinalAction | None = None


def decide(plan: DunningPlan, state: DunningState, at: datetime) -> DunningDecision:
    """The next dunning move for the oldest unpaid invoice at ``at``; one escalation per call.

    Worked example (retries 1d, 3d, 5d, 7d; steps 0d payment_failed, 7d reminder; final 14d
    cancel): at 7d the reminder waits while the 7d retry is due or in flight, then goes out; at
    14d the final action runs without another charge, unless the policy says ``last_try``.
    """
    age = at - state.started_at
    due = [i for i, s in enumerate(plan.steps) if i >= state.steps_done and s.after <= age]
    final_due = not state.final_done and plan.final_after <= age
    if not due and not final_due:
        return DunningDecision(Verdict.NOTHING)
    if state.attempt_open:
        return DunningDecision(Verdict.WAIT)
    if due:
        step = plan.steps[due[0]]
        return DunningDecision(Verdict.ESCALATE, email=step.email, step_index=due[0])
    final_at = state.started_at + plan.final_after
    tried = state.last_attempt_at is not None and state.last_attempt_at >= final_at
    if plan.last_try and not tried and not state.hard_declined:
        return DunningDecision(Verdict.RETRY_FIRST)
    return DunningDecision(Verdict.ESCALATE, final_action=plan.final_action)
