"""The payment attempt as a pure state machine: worked examples, answers about another order,
and the property that any arrival order of the same facts ends in the same state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.domain.payments import (
    FINAL,
    Attempt,
    AttemptState,
    Claims,
    DeclineKind,
    Effect,
    Outcome,
    OutcomeKind,
    Source,
    decide,
    decline_kind,
    mismatches,
)

AT = datetime(2026, 3, 10, 12, tzinfo=UTC)
LEASE = AT + timedelta(minutes=2)
ORDER = "K3F9QZ-42-01-7M2Q9X"
ASKED = Attempt(ORDER, 1900, "CAD", AttemptState.SENDING, mch_id="10000701",
                card_id="K3F9QZ-C7-ABCDEF", lease_until=LEASE, card_expiry="1230")


def said(status: int | None = None, **kw: object) -> Claims:
    base: dict[str, object] = dict(mch_order_no=ORDER, amount=1900, currency="CAD",
                                   mch_id="10000701", pay_order_id="P1", status=status)
    base.update(kw)
    return Claims(**base)  # type: ignore[arg-type]


def paid(source: Source = Source.PURCHASE, **kw: object) -> Outcome:
    return Outcome(OutcomeKind.PAID, source, said(2, **kw))


def declined(**kw: object) -> Outcome:
    return Outcome(OutcomeKind.DECLINED, Source.PURCHASE, said(9, **kw), "Do not honor")


def test_a_paid_reply_settles_the_invoice_once() -> None:
    first = decide(ASKED, paid(), AT)
    assert (first.state, first.effect, first.pay_order_id) == (
        AttemptState.SUCCEEDED, Effect.SETTLE, "P1")
    again = decide(Attempt(ORDER, 1900, "CAD", first.state, pay_order_id="P1"), paid(), AT)
    assert again.effect is Effect.NONE


@pytest.mark.parametrize("claim", [
    {"amount": 2500}, {"currency": "USD"}, {"mch_order_no": "K3F9QZ-42-01-OTHER1"},
    {"mch_id": "10000999"}, {"card_id": "SOMEONE-ELSES"},
])
def test_an_answer_about_another_order_is_never_applied(claim: dict[str, object]) -> None:
    decision = decide(ASKED, paid(**claim), AT)
    assert decision.effect is Effect.DISCREPANCY
    assert decision.state is AttemptState.UNKNOWN  # waits for a query, never a new number
    assert decision.mismatched == tuple(claim)


def test_a_second_gateway_order_id_for_a_known_order_is_a_discrepancy() -> None:
    known = Attempt(ORDER, 1900, "CAD", AttemptState.PENDING, pay_order_id="P1")
    assert decide(known, paid(pay_order_id="P2"), AT).effect is Effect.DISCREPANCY


def test_a_success_proven_by_the_gateway_wins_over_an_earlier_decline() -> None:
    failed = Attempt(ORDER, 1900, "CAD", AttemptState.FAILED)
    decision = decide(failed, paid(Source.NOTIFY), AT)
    assert (decision.state, decision.effect) == (AttemptState.SUCCEEDED, Effect.SETTLE)


def test_a_late_failure_never_unpays() -> None:
    succeeded = Attempt(ORDER, 1900, "CAD", AttemptState.SUCCEEDED, pay_order_id="P1")
    decision = decide(succeeded, declined(), AT)
    assert (decision.state, decision.effect) == (AttemptState.SUCCEEDED, Effect.NONE)


def test_declines_are_hard_only_when_a_field_proves_the_card_expired() -> None:
    soft = decide(ASKED, declined(), AT)
    assert (soft.effect, soft.decline) == (Effect.DECLINE, DeclineKind.SOFT)
    hard = decide(ASKED, declined(expiry="0226"), AT)
    assert hard.decline is DeclineKind.HARD
    expired_on_file = Attempt(ORDER, 1900, "CAD", AttemptState.SENDING, card_expiry="0126")
    assert decide(expired_on_file, declined(), AT).decline is DeclineKind.HARD


@pytest.mark.parametrize("reason", ["Restricted merchant category", "Invalid currency for card",
                                    "Card sign-up missing", "bad parameter on issuer side"])
def test_a_status_9_decline_is_a_decline_whatever_its_words(reason: str) -> None:
    outcome = Outcome(OutcomeKind.DECLINED, Source.PURCHASE, said(9), reason)
    decision = decide(ASKED, outcome, AT)
    assert (decision.effect, decision.decline) == (Effect.DECLINE, DeclineKind.SOFT)


def test_a_refused_request_is_a_set_up_error_not_a_decline() -> None:
    outcome = Outcome(OutcomeKind.REJECTED, reason="sign error: sign does not match")
    decision = decide(ASKED, outcome, AT)
    assert (decision.state, decision.effect, decision.decline) == (
        AttemptState.FAILED, Effect.SETUP_ERROR, DeclineKind.SETUP)


def test_not_sent_only_counts_under_the_lease_that_sent_it() -> None:
    mine = decide(ASKED, Outcome(OutcomeKind.NOT_SENT, lease_until=LEASE), AT)
    assert (mine.state, mine.effect) == (AttemptState.FAILED_NOT_SENT, Effect.RETRY_SOON)
    stale = Outcome(OutcomeKind.NOT_SENT, lease_until=LEASE - timedelta(minutes=5))
    assert decide(ASKED, stale, AT).effect is Effect.NONE
    unknown = Attempt(ORDER, 1900, "CAD", AttemptState.UNKNOWN)
    assert decide(unknown, Outcome(OutcomeKind.NOT_SENT), AT).effect is Effect.NONE


@pytest.mark.parametrize("kind", [OutcomeKind.NOT_SENT, OutcomeKind.REJECTED])
def test_a_failed_resend_never_closes_an_order_whose_first_request_may_land(
    kind: OutcomeKind
) -> None:
    # unknown -> "no such order" -> re-sent under the same number and lease -> not sent/refused
    resending = Attempt(ORDER, 1900, "CAD", AttemptState.SENDING, lease_until=LEASE)
    decision = decide(resending, Outcome(kind, Source.RESEND, lease_until=LEASE), AT)
    assert (decision.state, decision.effect) == (AttemptState.UNKNOWN, Effect.CHECK_LATER)


def test_no_such_order_resends_the_same_number_only_while_unresolved() -> None:
    lost = Attempt(ORDER, 1900, "CAD", AttemptState.UNKNOWN)
    assert decide(lost, Outcome(OutcomeKind.NOT_FOUND, Source.QUERY), AT).effect is (
        Effect.RESEND_SAME_ORDER)
    done = Attempt(ORDER, 1900, "CAD", AttemptState.FAILED)
    assert decide(done, Outcome(OutcomeKind.NOT_FOUND, Source.QUERY), AT).effect is Effect.NONE


def test_mismatches_ignores_what_an_answer_does_not_say() -> None:
    assert mismatches(ASKED, Claims()) == ()
    assert decline_kind(None, AT) is DeclineKind.SOFT


# --- any arrival order of the same facts ------------------------------------------------------

TRUTHS = ("charged", "declined", "pending", "never_reached")


def _facts(truth: str) -> st.SearchStrategy[list[Outcome]]:
    """Outcomes the engine could learn about one order whose truth at the gateway is ``truth``:
    one send result, any number of notifies and query answers consistent with it."""
    unknown = Outcome(OutcomeKind.UNKNOWN, reason="read timeout")
    no_answer = Outcome(OutcomeKind.NO_ANSWER, Source.QUERY)
    pending = Outcome(OutcomeKind.UNSETTLED, Source.PURCHASE, said(1))
    if truth == "charged":
        send = st.sampled_from([paid(), unknown, pending])
        others = st.lists(st.sampled_from([paid(Source.NOTIFY), paid(Source.QUERY), no_answer,
                                           Outcome(OutcomeKind.UNSETTLED, Source.QUERY,
                                                   said(1))]), max_size=5)
    elif truth == "declined":
        send = st.sampled_from([declined(), unknown, pending])
        others = st.lists(st.sampled_from([declined(), no_answer]), max_size=5)
    elif truth == "pending":
        send = st.sampled_from([pending, unknown])
        others = st.lists(st.sampled_from([pending, no_answer]), max_size=5)
    else:
        send = st.sampled_from([Outcome(OutcomeKind.NOT_SENT, lease_until=LEASE), unknown])
        others = st.lists(st.sampled_from([Outcome(OutcomeKind.NOT_FOUND, Source.QUERY),
                                           no_answer]), max_size=5)
    return st.tuples(send, others).map(lambda t: [t[0], *t[1]])


def _run(outcomes: list[Outcome]) -> tuple[AttemptState, list[Effect]]:
    effects: list[Effect] = []

    def step(attempt: Attempt, outcome: Outcome) -> Attempt:
        decision = decide(attempt, outcome, AT)
        effects.append(decision.effect)
        return Attempt(attempt.mch_order_no, attempt.amount, attempt.currency, decision.state,
                       attempt.mch_id, attempt.card_id,
                       attempt.pay_order_id or decision.pay_order_id, attempt.lease_until,
                       attempt.card_expiry)

    final = reduce(step, outcomes, ASKED)
    return final.state, effects


@settings(max_examples=400)
@given(st.sampled_from(TRUTHS).flatmap(_facts), st.randoms(use_true_random=False))
def test_any_arrival_order_of_reply_notify_and_query_gives_the_same_end_state(
    outcomes: list[Outcome], rnd: object
) -> None:
    state, effects = _run(outcomes)
    shuffled = list(outcomes)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    state2, effects2 = _run(shuffled)
    assert state == state2
    # money moves once, whatever the order: one settle if the gateway said paid, else none
    paid_said = any(o.kind is OutcomeKind.PAID for o in outcomes)
    assert effects.count(Effect.SETTLE) == effects2.count(Effect.SETTLE) == int(paid_said)
    assert effects.count(Effect.DECLINE) <= 1 and effects2.count(Effect.DECLINE) <= 1
    if paid_said:
        assert state is AttemptState.SUCCEEDED
    if state in FINAL and state is not AttemptState.SUCCEEDED:
        assert Effect.SETTLE not in effects
