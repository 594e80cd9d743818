"""Dunning decisions, as worked examples and properties of the pure ``decide``/``next_retry``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from billing.domain.dunning import (
    CATCH_UP_GAP,
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
                                   attempt_open=False, hard_declined=False, last_attempt_at=None)
    base.update(kw)
    return DunningState(**base)  # type: ignore[arg-type]


def test_first_failure_sends_payment_failed_at_once() -> None:
    decision = decide(PLAN, _state(), T0)
    assert (decision.verdict, decision.email, decision.step_index) == (
        Verdict.ESCALATE, DunningEmail.PAYMENT_FAILED, 0)


def test_a_reminder_never_asks_for_a_charge_of_its_own() -> None:
    # The schedule is the whole list of retries: the 7d reminder goes out without a retry first.
    state = _state(steps_done=1, last_attempt_at=T0)
    assert decide(PLAN, state, T0 + 7 * DAY).email is DunningEmail.REMINDER


def test_a_reminder_waits_while_the_scheduled_retry_is_due_or_in_flight() -> None:
    state = _state(steps_done=1, attempt_open=True)
    assert decide(PLAN, state, T0 + 8 * DAY).verdict is Verdict.WAIT


def test_hard_declined_card_escalates_on_time() -> None:
    state = _state(steps_done=1, hard_declined=True)
    assert decide(PLAN, state, T0 + 7 * DAY).email is DunningEmail.REMINDER


def test_final_action_runs_at_its_time_without_another_charge() -> None:
    state = _state(steps_done=3, last_attempt_at=T0 + 7 * DAY)
    decision = decide(PLAN, state, T0 + 14 * DAY)
    assert decision.final_action is FinalAction.CANCEL
    assert decide(PLAN, _state(steps_done=3, final_done=True),
                  T0 + 30 * DAY).verdict is Verdict.NOTHING


def test_a_last_try_before_the_final_action_only_when_the_policy_says_so() -> None:
    last_try = replace(PLAN, last_try=True)
    before = _state(steps_done=3, last_attempt_at=T0 + 7 * DAY)
    assert decide(last_try, before, T0 + 14 * DAY).verdict is Verdict.RETRY_FIRST
    tried = _state(steps_done=3, last_attempt_at=T0 + 14 * DAY)
    assert decide(last_try, tried, T0 + 14 * DAY).final_action is FinalAction.CANCEL
    hard = _state(steps_done=3, last_attempt_at=T0 + 7 * DAY, hard_declined=True)
    assert decide(last_try, hard, T0 + 14 * DAY).final_action is FinalAction.CANCEL


def test_after_downtime_steps_come_one_at_a_time_in_order() -> None:
    state = _state(steps_done=1)
    assert decide(PLAN, state, T0 + 20 * DAY).email is DunningEmail.REMINDER


def test_retries_are_offsets_from_the_first_failure() -> None:
    assert next_retry(PLAN, T0, T0, T0) == T0 + DAY
    assert next_retry(PLAN, T0, T0 + DAY, T0 + DAY) == T0 + 3 * DAY
    assert next_retry(PLAN, T0, T0 + 7 * DAY, T0 + 7 * DAY) is None


def test_a_decline_learned_late_still_gets_the_retry_that_came_due_meanwhile() -> None:
    # the 1d retry was made; its decline is only learned at 3d (a lost answer, then a query):
    # the 3d retry is made an hour later, once, and the 5d one follows on schedule
    assert next_retry(PLAN, T0, T0 + DAY, T0 + 3 * DAY) == T0 + 3 * DAY + CATCH_UP_GAP
    # learned at 6d: one retry soon (for 3d), and 5d is skipped, never a burst
    assert next_retry(PLAN, T0, T0 + DAY, T0 + 6 * DAY) == T0 + 6 * DAY + CATCH_UP_GAP
    assert next_retry(PLAN, T0, T0 + 6 * DAY, T0 + 6 * DAY) == T0 + 7 * DAY


def test_snapshot_round_trips_through_json() -> None:
    assert DunningPlan.from_json(PLAN.to_json()) == PLAN
    assert DunningPlan.from_json(replace(PLAN, last_try=True).to_json()).last_try


def test_a_snapshot_from_before_last_try_existed_reads_as_no_last_try() -> None:
    old = PLAN.to_json()
    del old["last_try"]
    assert DunningPlan.from_json(old).last_try is False


@given(st.integers(min_value=0, max_value=40 * 24), st.integers(min_value=0, max_value=3),
       st.booleans(), st.booleans(), st.booleans())
def test_dunning_asks_for_a_charge_only_as_the_explicit_last_try(
    hours: int, steps_done: int, attempt_open: bool, hard: bool, last_try: bool
) -> None:
    plan = replace(PLAN, last_try=last_try)
    at = T0 + timedelta(hours=hours)
    decision = decide(plan, _state(steps_done=steps_done, attempt_open=attempt_open,
                                   hard_declined=hard), at)
    if decision.verdict is Verdict.RETRY_FIRST:
        assert last_try and not hard and at - T0 >= plan.final_after
        assert steps_done == len(plan.steps)  # every email went out first
    if decision.email is not None:
        assert decision.step_index == steps_done
        assert PLAN.steps[steps_done].after <= timedelta(hours=hours)


def _charges(plan: DunningPlan, until: timedelta) -> int:
    """Walk a declined-every-time invoice hour by hour, as the engine would, and count charges."""
    started, at, charges = T0, T0, 1  # the first, failed, charge starts dunning
    steps, final_done, last = 0, False, T0
    due: datetime | None = next_retry(plan, started, at, at)
    while at - started <= until and not final_done:
        if due is not None and due <= at:
            charges, last, due = charges + 1, at, next_retry(plan, started, at, at)
            continue
        decision = decide(plan, _state(steps_done=steps, final_done=final_done,
                                       attempt_open=False, last_attempt_at=last), at)
        if decision.verdict is Verdict.RETRY_FIRST:
            due = at
            continue
        if decision.email is not None:
            steps += 1
        elif decision.final_action is not None:
            final_done = True
        else:
            at += timedelta(hours=1)
    return charges


def test_a_declined_invoice_is_charged_exactly_as_the_schedule_says() -> None:
    # first charge + 4 scheduled retries; no sixth charge before the final action at 14d
    assert _charges(PLAN, 30 * DAY) == 1 + len(PLAN.retry_offsets)
    assert _charges(replace(PLAN, last_try=True), 30 * DAY) == 2 + len(PLAN.retry_offsets)


@given(st.integers(min_value=0, max_value=60 * 24), st.integers(min_value=0, max_value=60 * 24))
def test_next_retry_is_never_before_now_and_always_after_the_last_attempt(
    made: int, learned: int
) -> None:
    last, at = T0 + timedelta(hours=made), T0 + timedelta(hours=made + learned)
    when = next_retry(PLAN, T0, last, at)
    assert when is None or (when >= at and when > last)
    assert when is None or when == at + CATCH_UP_GAP or when - T0 in PLAN.retry_offsets


@given(st.lists(st.integers(min_value=0, max_value=72), min_size=1, max_size=12))
def test_however_late_declines_are_learned_the_schedule_bounds_the_charges(
    delays: list[int]
) -> None:
    """Each charge's decline is learned some hours after it was made; still at most one charge
    per offset of the schedule follows the first."""
    at, last, charges = T0, T0, 1
    for delay in delays:
        learned = max(at, last + timedelta(hours=delay))
        when = next_retry(PLAN, T0, last, learned)
        if when is None:
            break
        at = last = when
        charges += 1
    assert charges <= 1 + len(PLAN.retry_offsets)
