"""Subscription transitions, proration and payment classification: the pure rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.domain.calendar import BillingCalendar, Interval, IntervalUnit
from billing.domain.money import Money
from billing.domain.payments import (
    AttemptState,
    DeclineKind,
    classify_decline,
    next_check,
    order_number,
    state_for_status,
)
from billing.domain.proration import prorate_change
from billing.domain.subscriptions import Event, Status, transition
from billing.errors import Conflict, InvalidInput

AT = datetime(2026, 1, 20, tzinfo=UTC)


@pytest.mark.parametrize("before,event,after", [
    (Status.TRIALING, Event.PERIOD_STARTED, Status.ACTIVE),
    (Status.ACTIVE, Event.PAYMENT_FAILED, Status.PAST_DUE),
    (Status.PAST_DUE, Event.PAID_UP, Status.ACTIVE),
    (Status.UNPAID, Event.PAID_UP, Status.ACTIVE),
    (Status.PAST_DUE, Event.DUNNING_CANCEL, Status.CANCELED),
    (Status.PAST_DUE, Event.DUNNING_MARK_UNPAID, Status.UNPAID),
    (Status.PAST_DUE, Event.DUNNING_LEAVE_PAST_DUE, Status.PAST_DUE),
    (Status.ACTIVE, Event.PAUSE, Status.PAUSED),
    (Status.PAUSED, Event.RESUME, Status.ACTIVE),
    (Status.PAUSED, Event.CANCEL, Status.CANCELED),
])
def test_allowed_transitions(before: Status, event: Event, after: Status) -> None:
    step = transition(before, event, AT)
    assert step.after is after and step.at == AT


@pytest.mark.parametrize("before,event", [
    (Status.CANCELED, Event.RESUME), (Status.CANCELED, Event.CANCEL),
    (Status.ACTIVE, Event.RESUME), (Status.UNPAID, Event.PAUSE),
])
def test_forbidden_transitions_are_conflicts(before: Status, event: Event) -> None:
    with pytest.raises(Conflict, match="cannot"):
        transition(before, event, AT)


def test_canceled_is_final_for_everything_but_bookkeeping() -> None:
    for event in Event:
        try:
            step = transition(Status.CANCELED, event, AT)
        except Conflict:
            continue
        assert step.after is Status.CANCELED


MONTHLY = BillingCalendar(date(2026, 1, 1), Interval(IntervalUnit.MONTH), "UTC")


def test_upgrade_with_ten_of_thirty_days_left_charges_a_third_of_the_difference() -> None:
    period = BillingCalendar(date(2026, 4, 1), Interval(IntervalUnit.MONTH), "UTC").period(0)
    change = prorate_change(period, datetime(2026, 4, 21, tzinfo=UTC), Money(1000, "CAD"),
                            Money(4000, "CAD"))
    assert change.ratio == Fraction(1, 3) and change.net == Money(1000, "CAD")


def test_downgrade_mid_period_is_a_credit() -> None:
    period = MONTHLY.period(0)
    change = prorate_change(period, datetime(2026, 1, 16, 12, tzinfo=UTC), Money(3100, "CAD"),
                            Money(0, "CAD"))
    assert change.net == Money(-1550, "CAD")


def test_proration_outside_the_period_is_refused() -> None:
    with pytest.raises(InvalidInput):
        prorate_change(MONTHLY.period(0), datetime(2026, 3, 1, tzinfo=UTC), Money(1, "CAD"),
                       Money(2, "CAD"))


@given(st.integers(min_value=0, max_value=31 * 86400 - 1),
       st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=10**7))
def test_proration_is_exact_to_the_second_and_rounded_once(
    offset: int, old: int, new: int
) -> None:
    period = MONTHLY.period(0)
    at = period.start + timedelta(seconds=offset)
    change = prorate_change(period, at, Money(old, "CAD"), Money(new, "CAD"))
    exact = Fraction(new - old) * Fraction(period.seconds - offset, period.seconds)
    assert abs(Fraction(change.net.amount) - exact) <= Fraction(1, 2)
    back = prorate_change(period, at, Money(new, "CAD"), Money(old, "CAD"))
    assert abs(change.net.amount + back.net.amount) <= 1


@pytest.mark.parametrize("message,kind", [
    ("Expired card", DeclineKind.HARD), ("invalid card number", DeclineKind.HARD),
    ("Insufficient funds", DeclineKind.SOFT), ("Do not honor", DeclineKind.SOFT),
    ("Exceeds amount limit", DeclineKind.SOFT), ("something new", DeclineKind.SOFT),
])
def test_decline_kinds(message: str, kind: DeclineKind) -> None:
    assert classify_decline(message) is kind


@pytest.mark.parametrize("status,state", [
    (2, AttemptState.SUCCEEDED), (3, AttemptState.SUCCEEDED), (9, AttemptState.FAILED),
    (0, AttemptState.PENDING), (1, AttemptState.PENDING), (None, AttemptState.PENDING),
    (7, AttemptState.PENDING),
])
def test_only_2_3_and_9_are_final(status: int | None, state: AttemptState) -> None:
    assert state_for_status(status) is state


def test_reconcile_backoff_grows_then_stays_daily() -> None:
    gaps = [next_check(AT, n) - AT for n in range(6)]
    assert gaps[:4] == [timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=1),
                        timedelta(days=1)]
    assert gaps[4] == gaps[5] == timedelta(days=1)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=6, max_size=6),
       st.integers(min_value=1, max_value=999_999_999), st.integers(min_value=1, max_value=99))
def test_order_numbers_fit_the_gateway_and_never_collide(prefix: str, invoice: int,
                                                         attempt: int) -> None:
    number = order_number(prefix, invoice, attempt)
    assert len(number) <= 30
    assert number != order_number(prefix, invoice, attempt + 1)
    assert number != order_number(prefix, invoice + 1, attempt)
