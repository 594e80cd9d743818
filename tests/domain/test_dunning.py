"""Dunning decisions, as worked examples and properties of the pure ``decide``/``next_retry``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from billing.domain.dunning import (
    DunningEmail,
    DunningPlan,
    DunningState,
    DunningStep,
    FinalAction,
    Verdict,
    decide,
    next_retry,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
PLAN = DunningPlan(
    retry_offsets=(1 * DAY, 3 * DAY, 5 * DAY, 7 * DAY),
    steps=(DunningStep(0 * DAY, DunningEmail.PAYMENT_FAILED),
           DunningStep(7 * DAY, DunningEmail.REMINDER),
           DunningStep(12 * DAY, DunningEmail.FINAL_NOTICE)),
    final_after=14 * DAY,
    final_action=FinalAction.CANCEL,
)


def _state(**kw: object) -> DunningState:
    base: dict[str, object] = dict(started_at=T0, steps_done=0, final_done=False,
                                   escalated=False, attempts_since_escalation=0,
                                   attempt_open=False, hard_declined=False)
    base.update(kw)
    return DunningState(**base)  # type: ignore[arg-type]


def test_first_failure_sends_payment_failed_at_once() -> None:
    decision = decide(PLAN, _state(), T0)
    assert (decision.verdict, decision.email, decision.step_index) == (
        Verdict.ESCALATE, DunningEmail.PAYMENT_FAILED, 0)


def test_reminder_waits_for_a_retry_after_the_first_email() -> None:
    state = _state(steps_done=1, escalated=True, attempts_since_escalation=0)
    assert decide(PLAN, state, T0 + 7 * DAY).verdict is Verdict.RETRY_FIRST
    retried = _state(steps_done=1, escalated=True, attempts_since_escalation=1)
    assert decide(PLAN, retried, T0 + 7 * DAY).email is DunningEmail.REMINDER


def test_nothing_is_decided_while_an_attempt_is_in_flight() -> None:
    state = _state(steps_done=1, escalated=True, attempts_since_escalation=1, attempt_open=True)
    assert decide(PLAN, state, T0 + 8 * DAY).verdict is Verdict.WAIT


def test_hard_declined_card_escalates_without_a_retry() -> None:
    state = _state(steps_done=1, escalated=True, hard_declined=True)
    assert decide(PLAN, state, T0 + 7 * DAY).email is DunningEmail.REMINDER


def test_final_action_comes_after_the_last_email() -> None:
    state = _state(steps_done=3, escalated=True, attempts_since_escalation=1)
    decision = decide(PLAN, state, T0 + 14 * DAY)
    assert decision.final_action is FinalAction.CANCEL
    assert decide(PLAN, _state(steps_done=3, final_done=True, escalated=True),
                  T0 + 30 * DAY).verdict is Verdict.NOTHING


def test_after_downtime_steps_come_one_at_a_time_in_order() -> None:
    state = _state(steps_done=1, escalated=True, attempts_since_escalation=1)
    assert decide(PLAN, state, T0 + 20 * DAY).email is DunningEmail.REMINDER


def test_retries_are_offsets_from_the_first_failure() -> None:
    assert next_retry(PLAN, T0, T0) == T0 + DAY
    assert next_retry(PLAN, T0, T0 + DAY) == T0 + 3 * DAY
    assert next_retry(PLAN, T0, T0 + 7 * DAY) is None


def test_snapshot_round_trips_through_json() -> None:
    assert DunningPlan.from_json(PLAN.to_json()) == PLAN


@given(st.integers(min_value=0, max_value=40 * 24), st.integers(min_value=0, max_value=3),
       st.booleans(), st.integers(min_value=0, max_value=3))
def test_an_escalation_never_fires_without_a_retry_since_the_last(
    hours: int, steps_done: int, escalated: bool, attempts: int
) -> None:
    state = _state(steps_done=steps_done, escalated=escalated or steps_done > 0,
                   attempts_since_escalation=attempts)
    decision = decide(PLAN, state, T0 + timedelta(hours=hours))
    if decision.verdict is Verdict.ESCALATE and state.escalated:
        assert attempts > 0
    if decision.email is not None:
        assert decision.step_index == steps_done
        assert PLAN.steps[steps_done].after <= timedelta(hours=hours)


@given(st.integers(min_value=0, max_value=60 * 24))
def test_next_retry_is_always_in_the_future_and_on_the_schedule(hours: int) -> None:
    at = T0 + timedelta(hours=hours)
    when = next_retry(PLAN, T0, at)
    assert when is None or (when > at and when - T0 in PLAN.retry_offsets)
