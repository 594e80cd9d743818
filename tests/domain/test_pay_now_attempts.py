"""Pay-now attempts in the pure state machine: what the customer's own hosted payment may and
may not do to its invoice (never a dunning step, never a re-send, abandoned only when unpaid)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce

from hypothesis import given
from hypothesis import strategies as st

from billing.domain.payments import (
    FINAL,
    IN_FLIGHT,
    PAY_NOW_GRACE,
    PAY_NOW_WATCH,
    Attempt,
    AttemptSource,
    AttemptState,
    Claims,
    Effect,
    Outcome,
    OutcomeKind,
    Source,
    check_after,
    decide,
)

AT = datetime(2026, 3, 10, 12, tzinfo=UTC)
EXPIRES = AT + timedelta(minutes=30)
ORDER = "K3F9QZ-42-02-7M2Q9X"
HOSTED = Attempt(ORDER, 1900, "CAD", AttemptState.PENDING, mch_id="10000701",
                 source=AttemptSource.PAY_NOW, expires_at=EXPIRES)
SCHEDULED = Attempt(ORDER, 1900, "CAD", AttemptState.PENDING, mch_id="10000701")


def claims(status: int) -> Claims:
    return Claims(mch_order_no=ORDER, amount=1900, currency="CAD", mch_id="10000701",
                  pay_order_id="P1", status=status)


NOT_FOUND = Outcome(OutcomeKind.NOT_FOUND, Source.QUERY)
DECLINED = Outcome(OutcomeKind.DECLINED, Source.QUERY, claims(9), "Insufficient funds")
PAID = Outcome(OutcomeKind.PAID, Source.NOTIFY, claims(2))
UNSETTLED = Outcome(OutcomeKind.UNSETTLED, Source.QUERY, claims(1))


def test_an_unsubmitted_hosted_page_is_looked_up_again_not_resent() -> None:
    decision = decide(HOSTED, NOT_FOUND, AT + timedelta(minutes=5))
    assert (decision.state, decision.effect) == (AttemptState.PENDING, Effect.CHECK_LATER)
    # A scheduled attempt the gateway has never heard of is re-sent: the contrast is the point.
    assert decide(SCHEDULED, NOT_FOUND, AT).effect is Effect.RESEND_SAME_ORDER


def test_a_hosted_page_unpaid_past_its_lifetime_is_watched_without_a_decline() -> None:
    decision = decide(HOSTED, NOT_FOUND, EXPIRES)
    assert decision.state is AttemptState.WATCHED and decision.effect is Effect.WATCH
    assert decision.state not in IN_FLIGHT and decision.state not in FINAL
    assert decision.decline is None and decision.reason is not None
    assert "abandoned" in decision.reason


def watched(state: AttemptState = AttemptState.WATCHED) -> Attempt:
    return Attempt(ORDER, 1900, "CAD", state, mch_id="10000701",
                   source=AttemptSource.PAY_NOW, expires_at=EXPIRES)


NO_ANSWER = Outcome(OutcomeKind.NO_ANSWER, Source.QUERY, reason="ConnectTimeout")


def test_a_watched_page_is_looked_up_until_the_watch_window_ends_then_closed() -> None:
    for outcome in (NOT_FOUND, UNSETTLED, NO_ANSWER):
        inside = decide(watched(), outcome, EXPIRES + PAY_NOW_WATCH - timedelta(minutes=1))
        assert (inside.state, inside.effect) == (AttemptState.WATCHED, Effect.CHECK_LATER)
        assert not inside.overdue
    after = decide(watched(), NOT_FOUND, EXPIRES + PAY_NOW_WATCH)
    assert (after.state, after.effect) == (AttemptState.FAILED, Effect.RELEASE)
    for when in (EXPIRES + timedelta(days=1), EXPIRES + PAY_NOW_WATCH + timedelta(days=30)):
        declined = decide(watched(), DECLINED, when)
        assert (declined.state, declined.effect) == (AttemptState.FAILED, Effect.RELEASE)


def test_a_watched_page_still_processing_or_unanswered_past_the_window_is_kept_and_flagged(
) -> None:
    for outcome in (UNSETTLED, NO_ANSWER):
        for late in (timedelta(0), timedelta(days=40)):
            kept = decide(watched(), outcome, EXPIRES + PAY_NOW_WATCH + late)
            assert (kept.state, kept.effect) == (AttemptState.WATCHED, Effect.CHECK_LATER)
            assert kept.overdue and kept.reason is not None and "watch window" in kept.reason
    # It may still be paid: the late success counts like any other.
    paid = decide(watched(), PAID, EXPIRES + PAY_NOW_WATCH + timedelta(days=40))
    assert (paid.state, paid.effect) == (AttemptState.SUCCEEDED, Effect.SETTLE)


def test_an_overdue_watched_page_is_asked_again_at_most_daily() -> None:
    end = EXPIRES + PAY_NOW_WATCH
    for checks in (0, 5, 50):
        later = check_after(end + timedelta(days=3), checks, EXPIRES)
        assert end + timedelta(days=3) < later <= end + timedelta(days=4)


def test_a_watched_page_paid_late_settles_and_a_duplicate_is_final() -> None:
    late = decide(watched(), PAID, EXPIRES + timedelta(days=3))
    assert (late.state, late.effect) == (AttemptState.SUCCEEDED, Effect.SETTLE)
    again = decide(watched(AttemptState.DUPLICATE), PAID, EXPIRES + timedelta(days=3))
    assert (again.state, again.effect) == (AttemptState.DUPLICATE, Effect.NONE)
    assert decide(watched(AttemptState.DUPLICATE), DECLINED, AT).effect is Effect.NONE


def test_an_order_still_settling_is_watched_only_after_the_grace_period() -> None:
    within = decide(HOSTED, UNSETTLED, EXPIRES + PAY_NOW_GRACE - timedelta(minutes=1))
    assert (within.state, within.effect) == (AttemptState.PENDING, Effect.CHECK_LATER)
    for outcome in (UNSETTLED, Outcome(OutcomeKind.NO_ANSWER, Source.QUERY)):
        late = decide(HOSTED, outcome, EXPIRES + PAY_NOW_GRACE)
        assert (late.state, late.effect) == (AttemptState.WATCHED, Effect.WATCH)
    # A scheduled attempt is never given up on: only a hosted page has a lifetime.
    assert decide(SCHEDULED, UNSETTLED, EXPIRES + timedelta(days=30)).state is (
        AttemptState.PENDING)


def test_a_decline_on_the_hosted_page_releases_the_invoice_instead_of_dunning_it() -> None:
    decision = decide(HOSTED, DECLINED, AT)
    assert (decision.state, decision.effect) == (AttemptState.FAILED, Effect.RELEASE)
    assert decision.decline is None and decision.reason == "Insufficient funds"
    assert decide(SCHEDULED, DECLINED, AT).effect is Effect.DECLINE


def test_a_pay_now_that_never_left_is_released_not_retried_soon() -> None:
    sending = Attempt(ORDER, 1900, "CAD", AttemptState.SENDING, source=AttemptSource.PAY_NOW,
                      expires_at=EXPIRES)
    decision = decide(sending, Outcome(OutcomeKind.NOT_SENT, reason="refused"), AT)
    assert (decision.state, decision.effect) == (AttemptState.FAILED_NOT_SENT, Effect.RELEASE)


def test_a_payment_after_abandonment_still_settles() -> None:
    abandoned = decide(HOSTED, NOT_FOUND, EXPIRES)
    later = Attempt(ORDER, 1900, "CAD", abandoned.state, source=AttemptSource.PAY_NOW,
                    expires_at=EXPIRES)
    decision = decide(later, PAID, EXPIRES + timedelta(minutes=1))
    assert (decision.state, decision.effect) == (AttemptState.SUCCEEDED, Effect.SETTLE)


def test_a_hosted_attempt_is_checked_when_its_lifetime_ends() -> None:
    assert check_after(AT + timedelta(minutes=20), 2, EXPIRES) == EXPIRES
    assert check_after(AT, 0, EXPIRES) == AT + timedelta(minutes=1)
    assert check_after(EXPIRES, 2, EXPIRES) == EXPIRES + timedelta(hours=1)
    assert check_after(AT + timedelta(minutes=20), 2) == AT + timedelta(minutes=80)
    # Past expiry, the grace deadline and the end of the watch are each checked on time.
    assert check_after(EXPIRES + timedelta(hours=23), 5, EXPIRES) == EXPIRES + PAY_NOW_GRACE
    end = EXPIRES + PAY_NOW_WATCH
    assert check_after(end - timedelta(hours=2), 9, EXPIRES) == end


OUTCOMES = st.sampled_from([NOT_FOUND, DECLINED, PAID, UNSETTLED, NO_ANSWER])
WHEN = st.sampled_from([AT, EXPIRES, EXPIRES + timedelta(hours=1), EXPIRES + PAY_NOW_GRACE,
                        EXPIRES + PAY_NOW_WATCH + timedelta(days=1)])


@given(st.lists(st.tuples(OUTCOMES, WHEN), max_size=6))
def test_a_pay_now_attempt_never_dunning_never_resent_and_paid_wins(
        facts: list[tuple[Outcome, datetime]]) -> None:
    def step(attempt: Attempt, fact: tuple[Outcome, datetime]) -> Attempt:
        decision = decide(attempt, fact[0], fact[1])
        assert decision.effect not in (Effect.DECLINE, Effect.SETUP_ERROR, Effect.RETRY_SOON,
                                       Effect.RESEND_SAME_ORDER)
        # Kept watched past its window only while unproven, and then always flagged for a person.
        past = fact[1] >= EXPIRES + PAY_NOW_WATCH
        if attempt.state is AttemptState.WATCHED and decision.state is AttemptState.WATCHED:
            assert decision.overdue == past
            if past:
                assert fact[0].kind in (OutcomeKind.UNSETTLED, OutcomeKind.NO_ANSWER)
        if attempt.state not in IN_FLIGHT:  # once released, never holds its invoice again
            assert decision.state not in IN_FLIGHT
        return Attempt(ORDER, 1900, "CAD", decision.state, mch_id="10000701",
                       source=AttemptSource.PAY_NOW, expires_at=EXPIRES)

    end = reduce(step, facts, HOSTED)
    if any(outcome is PAID for outcome, _ in facts):
        assert end.state is AttemptState.SUCCEEDED
    else:
        assert end.state is not AttemptState.SUCCEEDED
    if end.state in FINAL:
        assert decide(end, NOT_FOUND, EXPIRES + timedelta(days=9)).effect is Effect.NONE
    if end.state is AttemptState.WATCHED:  # the watch ends once the gateway has its say
        for said in (NOT_FOUND, DECLINED):
            assert decide(end, said, EXPIRES + PAY_NOW_WATCH).state is AttemptState.FAILED
        assert decide(end, PAID, EXPIRES + PAY_NOW_WATCH).state is AttemptState.SUCCEEDED
        for unsure in (UNSETTLED, NO_ANSWER):  # otherwise it is kept, and a person alerted
            kept = decide(end, unsure, EXPIRES + PAY_NOW_WATCH)
            assert kept.state is AttemptState.WATCHED and kept.overdue
