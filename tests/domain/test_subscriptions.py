"""The status x event table: every cell defined, the engine's events never refused, and random
event sequences through a model of one subscription and its invoices keep the money rules."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.domain.subscriptions import (
    BILLABLE,
    COLLECTABLE,
    COMMANDS,
    Decision,
    Event,
    LifecyclePolicy,
    OnStop,
    OpenInvoices,
    Status,
    decide,
    render_table,
)

POLICIES = [LifecyclePolicy(on_cancel=c, on_pause=p) for c in OnStop for p in OnStop]


@pytest.mark.parametrize("policy", POLICIES)
def test_every_status_has_an_answer_for_every_event(policy: LifecyclePolicy) -> None:
    for status in Status:
        for event in Event:
            decision = decide(status, event, policy)
            assert isinstance(decision, Decision)
            assert decision.open_invoices is not OpenInvoices.PER_POLICY


def test_the_engines_own_events_are_never_refused() -> None:
    for status in Status:
        for event in set(Event) - COMMANDS:
            assert decide(status, event).allowed, (status, event)


@pytest.mark.parametrize("status,event,after", [
    (Status.TRIALING, Event.RENEWAL_DUE, Status.ACTIVE),
    (Status.ACTIVE, Event.PAYMENT_FAILED, Status.PAST_DUE),
    (Status.PAST_DUE, Event.PAID_UP, Status.ACTIVE),
    (Status.UNPAID, Event.PAID_UP, Status.ACTIVE),
    (Status.PAST_DUE, Event.FINAL_CANCEL_DUE, Status.CANCELED),
    (Status.PAST_DUE, Event.FINAL_MARK_UNPAID_DUE, Status.UNPAID),
    (Status.PAST_DUE, Event.FINAL_LEAVE_PAST_DUE_DUE, Status.PAST_DUE),
    (Status.ACTIVE, Event.PAUSE, Status.PAUSED),
    (Status.PAUSED, Event.RESUME, Status.ACTIVE),
    (Status.PAUSED, Event.CANCEL, Status.CANCELED),
    # the poison pills of the first months: a final action for a subscription the merchant
    # had already canceled or paused, and "mark unpaid" for one already unpaid
    (Status.CANCELED, Event.FINAL_CANCEL_DUE, Status.CANCELED),
    (Status.PAUSED, Event.FINAL_CANCEL_DUE, Status.PAUSED),
    (Status.UNPAID, Event.FINAL_MARK_UNPAID_DUE, Status.UNPAID),
    (Status.CANCELED, Event.FINAL_MARK_UNPAID_DUE, Status.CANCELED),
])
def test_worked_examples(status: Status, event: Event, after: Status) -> None:
    assert decide(status, event).after is after


@pytest.mark.parametrize("status,event", [
    (Status.CANCELED, Event.RESUME), (Status.CANCELED, Event.CANCEL),
    (Status.ACTIVE, Event.RESUME), (Status.UNPAID, Event.PAUSE),
    (Status.PAUSED, Event.PLAN_CHANGE), (Status.CANCELED, Event.CANCEL_AT_PERIOD_END),
])
def test_refused_commands_say_why(status: Status, event: Event) -> None:
    decision = decide(status, event)
    assert not decision.allowed and decision.refused and decision.after is status


def test_nothing_is_charged_or_dunned_after_cancel_or_while_paused() -> None:
    for status in (Status.CANCELED, Status.PAUSED):
        for event in Event:
            decision = decide(status, event)
            assert not decision.charge and not decision.issue_invoice, (status, event)
            assert not decision.dunning, (status, event)


def test_a_payment_for_a_canceled_subscription_is_alerted_and_never_reactivates() -> None:
    for event in (Event.PAYMENT_SUCCEEDED, Event.PAID_UP):
        decision = decide(Status.CANCELED, event)
        assert decision.after is Status.CANCELED and decision.alert


@pytest.mark.parametrize("policy,fate", [
    (LifecyclePolicy(), OpenInvoices.UNCOLLECTIBLE),
    (LifecyclePolicy(on_cancel=OnStop.KEEP_OPEN), OpenInvoices.STOP_COLLECTING),
])
def test_canceling_with_an_open_invoice_follows_the_setting(policy: LifecyclePolicy,
                                                            fate: OpenInvoices) -> None:
    assert decide(Status.PAST_DUE, Event.CANCEL, policy).open_invoices is fate


def test_pausing_keeps_open_invoices_by_default_and_resuming_collects_them() -> None:
    assert decide(Status.PAST_DUE, Event.PAUSE).open_invoices is OpenInvoices.STOP_COLLECTING
    assert decide(Status.PAUSED, Event.RESUME).open_invoices is OpenInvoices.RESUME_COLLECTING


def test_billable_and_collectable_statuses_come_from_the_table() -> None:
    assert {Status.TRIALING, Status.ACTIVE, Status.PAST_DUE} == BILLABLE
    assert {Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.UNPAID} == COLLECTABLE


def test_the_rendered_table_has_a_row_per_event_and_a_column_per_status() -> None:
    lines = render_table().splitlines()
    assert len(lines) == 2 + len(Event)
    assert all(line.count("|") == len(Status) + 2 for line in lines)


# --- a model of one subscription driven by random events ------------------------------------


@dataclass
class Model:
    """One subscription, its open invoices (collecting or not) and the money that moved."""

    status: Status = Status.ACTIVE
    collecting: int = 0
    kept_open: int = 0
    written_off: int = 0
    charges: list[Status] = field(default_factory=list)
    payments_recorded: int = 0
    payments_taken: int = 0
    alerts: int = 0

    def step(self, event: Event, policy: LifecyclePolicy) -> None:
        decision = decide(self.status, event, policy)
        if not decision.allowed:
            return
        if event in (Event.PAYMENT_SUCCEEDED, Event.PAID_UP):
            self.payments_taken += 1
            self.payments_recorded += 1  # the engine records a payment whatever the status
        if decision.charge and self.collecting:
            self.charges.append(self.status)
        self._invoices(decision.open_invoices)
        if decision.issue_invoice:
            self.collecting += 1
        self.alerts += decision.alert is not None
        self.status = decision.after

    def _invoices(self, fate: OpenInvoices) -> None:
        open_ = self.collecting + self.kept_open
        if fate is OpenInvoices.STOP_COLLECTING:
            self.collecting, self.kept_open = 0, open_
        elif fate is OpenInvoices.UNCOLLECTIBLE:
            self.collecting, self.kept_open, self.written_off = 0, 0, self.written_off + open_
        elif fate is OpenInvoices.RESUME_COLLECTING:
            self.collecting, self.kept_open = open_, 0


@settings(max_examples=300)
@given(st.lists(st.sampled_from(list(Event)), max_size=40), st.sampled_from(POLICIES),
       st.sampled_from(list(Status)))
def test_random_event_sequences_keep_the_money_rules(events: list[Event],
                                                     policy: LifecyclePolicy,
                                                     start: Status) -> None:
    model = Model(status=start, collecting=int(start in BILLABLE))
    canceled_at: int | None = None
    for n, event in enumerate(events):
        model.step(event, policy)  # no exception escapes, whatever the order
        if model.status is Status.CANCELED and canceled_at is None:
            canceled_at = n
            charges_at_cancel = len(model.charges)
    # no charge after cancel, and nothing is ever charged while paused or canceled
    if canceled_at is not None:
        assert len(model.charges) == charges_at_cancel
        assert model.collecting == 0
    assert Status.CANCELED not in model.charges and Status.PAUSED not in model.charges
    # every gateway success is recorded, exactly once
    assert model.payments_recorded == model.payments_taken
    # canceled is final: only a refused command could try to leave it
    if canceled_at is not None:
        assert model.status is Status.CANCELED
