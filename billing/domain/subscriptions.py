"""Every subscription status against every billing event, as data: ``decide(status, event)``.

The engine's own events (a renewal, a retry, a dunning step or final action coming due, a
payment's outcome arriving, even late) are never refused: each status has a defined answer, often
"nothing happens", so one subscription in an unexpected state can never raise into a tick and stop
the billing of everyone else. Only the merchant's commands (cancel, pause, resume, change plan)
can be refused, with a sentence a merchant understands, and the service turns that into
``Conflict``.

Money rules the table keeps: no charge and no dunning email after cancel; a payment that arrives
for a canceled (or paused) subscription is recorded, because the money was taken, and raises an
alert, but never reactivates it; what happens to an invoice still open when a subscription is
canceled or paused is a setting (``LifecyclePolicy``) whose default stops collecting it.

``docs/operations.md`` prints this table (``render_table``) as "what happens when".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Status(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    PAUSED = "paused"
    CANCELED = "canceled"


class Event(StrEnum):
    # The engine's own: never refused.
    RENEWAL_DUE = "renewal_due"
    SCHEDULED_CANCEL_DUE = "scheduled_cancel_due"
    RETRY_DUE = "retry_due"
    DUNNING_STEP_DUE = "dunning_step_due"
    FINAL_CANCEL_DUE = "final_cancel_due"
    FINAL_MARK_UNPAID_DUE = "final_mark_unpaid_due"
    FINAL_LEAVE_PAST_DUE_DUE = "final_leave_past_due_due"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAID_UP = "paid_up"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_UNKNOWN = "payment_unknown"
    REFUND = "refund"
    # The merchant's commands: may be refused.
    PLAN_CHANGE = "plan_change"
    CANCEL = "cancel"
    CANCEL_AT_PERIOD_END = "cancel_at_period_end"
    PAUSE = "pause"
    RESUME = "resume"


COMMANDS = frozenset({Event.PLAN_CHANGE, Event.CANCEL, Event.CANCEL_AT_PERIOD_END, Event.PAUSE,
                      Event.RESUME})
"""Events a person asks for; every other event is the engine's and is never refused."""

EVENT_TEXT: dict[Event, str] = {
    Event.RENEWAL_DUE: "a period starts (renewal due)",
    Event.SCHEDULED_CANCEL_DUE: "the period ends with cancel-at-period-end set",
    Event.RETRY_DUE: "a charge of an open invoice is due",
    Event.DUNNING_STEP_DUE: "a dunning email is due",
    Event.FINAL_CANCEL_DUE: "dunning's final action is due: cancel",
    Event.FINAL_MARK_UNPAID_DUE: "dunning's final action is due: mark unpaid",
    Event.FINAL_LEAVE_PAST_DUE_DUE: "dunning's final action is due: leave past due",
    Event.PAYMENT_SUCCEEDED: "a payment succeeds (reply, notify or query; even late)",
    Event.PAID_UP: "the last invoice in dunning is paid",
    Event.PAYMENT_FAILED: "a payment fails (even late)",
    Event.PAYMENT_UNKNOWN: "a payment's outcome is unknown or pending",
    Event.REFUND: "a refund or void",
    Event.PLAN_CHANGE: "change plan or quantity",
    Event.CANCEL: "cancel now",
    Event.CANCEL_AT_PERIOD_END: "cancel at period end",
    Event.PAUSE: "pause",
    Event.RESUME: "resume",
}


class OpenInvoices(StrEnum):
    """What happens to a subscription's open invoices on an event."""

    UNCHANGED = "unchanged"
    STOP_COLLECTING = "stop_collecting"
    """Kept open (still owed), but no more charges or dunning emails."""
    UNCOLLECTIBLE = "uncollectible"
    """Written off: no more charges or dunning emails."""
    RESUME_COLLECTING = "resume_collecting"
    """Invoices kept open by a pause are charged again."""
    PER_POLICY = "per_policy"
    """In the table only: ``decide`` replaces it by the ``LifecyclePolicy`` choice."""


class OnStop(StrEnum):
    """The setting for open invoices when a subscription is canceled or paused."""

    KEEP_OPEN = "keep_open"
    UNCOLLECTIBLE = "uncollectible"


@dataclass(frozen=True)
class LifecyclePolicy:
    """The merchant's choices; both defaults stop collecting at once."""

    on_cancel: OnStop = OnStop.UNCOLLECTIBLE
    on_pause: OnStop = OnStop.KEEP_OPEN


@dataclass(frozen=True)
class Decision:
    """What one event does to a subscription in one status."""

    after: Status
    refused: str | None = None
    """Why a merchant's command is not allowed; ``None`` when it is (engine events: always)."""
    issue_invoice: bool = False
    charge: bool = False
    dunning: bool = False
    """Whether dunning may go on (emails, escalation) for this subscription's invoices."""
    open_invoices: OpenInvoices = OpenInvoices.UNCHANGED
    restart_billing: bool = False
    alert: str | None = None

    @property
    def allowed(self) -> bool:
        return self.refused is None


_S = Status
_LIVE = (_S.TRIALING, _S.ACTIVE, _S.PAST_DUE)
_ON_STOP = OpenInvoices.PER_POLICY


def _same(*statuses: Status, **kw: object) -> dict[Status, Decision]:
    return {s: Decision(s, **kw) for s in statuses}  # type: ignore[arg-type]


def _to(after: Status, *statuses: Status, **kw: object) -> dict[Status, Decision]:
    return {s: Decision(after, **kw) for s in statuses}  # type: ignore[arg-type]


def _refuse(why: str, *statuses: Status) -> dict[Status, Decision]:
    return {s: Decision(s, refused=why.format(status=s.value.replace("_", " ")))
            for s in statuses}


_STOP = OpenInvoices.STOP_COLLECTING
_WRITE_OFF = OpenInvoices.UNCOLLECTIBLE
_PAID_CANCELED = "payment for a canceled subscription: the money was taken; refund it or " \
                 "reactivate the customer by hand"

_TABLE: dict[Event, dict[Status, Decision]] = {
    Event.RENEWAL_DUE: {
        _S.TRIALING: Decision(_S.ACTIVE, issue_invoice=True),
        **_same(_S.ACTIVE, _S.PAST_DUE, issue_invoice=True),
        **_same(_S.UNPAID, _S.PAUSED, _S.CANCELED),
    },
    Event.SCHEDULED_CANCEL_DUE: {
        **_to(_S.CANCELED, *_LIVE, _S.UNPAID, _S.PAUSED, open_invoices=_ON_STOP),
        **_same(_S.CANCELED),
    },
    Event.RETRY_DUE: {
        **_same(*_LIVE, _S.UNPAID, charge=True),
        **_same(_S.PAUSED, open_invoices=_ON_STOP),
        **_same(_S.CANCELED, open_invoices=_ON_STOP),
    },
    Event.DUNNING_STEP_DUE: {
        **_same(*_LIVE, dunning=True),
        **_same(_S.UNPAID, _S.PAUSED, _S.CANCELED),
    },
    Event.FINAL_CANCEL_DUE: {
        **_to(_S.CANCELED, *_LIVE, _S.UNPAID, open_invoices=_WRITE_OFF),
        **_same(_S.PAUSED, _S.CANCELED),
    },
    Event.FINAL_MARK_UNPAID_DUE: {
        **_to(_S.UNPAID, *_LIVE, _S.UNPAID, open_invoices=_STOP),
        **_same(_S.PAUSED, _S.CANCELED),
    },
    Event.FINAL_LEAVE_PAST_DUE_DUE: {
        **_to(_S.PAST_DUE, *_LIVE, open_invoices=_STOP),
        **_same(_S.UNPAID, open_invoices=_STOP),
        **_same(_S.PAUSED, _S.CANCELED),
    },
    Event.PAYMENT_SUCCEEDED: {
        **_same(*_LIVE, _S.UNPAID, _S.PAUSED),
        _S.CANCELED: Decision(_S.CANCELED, alert=_PAID_CANCELED),
    },
    Event.PAID_UP: {
        **_to(_S.ACTIVE, _S.ACTIVE, _S.PAST_DUE),
        _S.TRIALING: Decision(_S.TRIALING),
        _S.UNPAID: Decision(_S.ACTIVE, restart_billing=True),
        _S.PAUSED: Decision(_S.PAUSED),
        _S.CANCELED: Decision(_S.CANCELED, alert=_PAID_CANCELED),
    },
    Event.PAYMENT_FAILED: {
        **_to(_S.PAST_DUE, *_LIVE, dunning=True),
        **_same(_S.UNPAID, _S.PAUSED, _S.CANCELED),
    },
    Event.PAYMENT_UNKNOWN: _same(*Status),
    Event.REFUND: _same(*Status),
    Event.PLAN_CHANGE: {
        **_same(*_LIVE),
        **_refuse("cannot change the plan of a {status} subscription",
                  _S.UNPAID, _S.PAUSED, _S.CANCELED),
    },
    Event.CANCEL: {
        **_to(_S.CANCELED, *_LIVE, _S.UNPAID, _S.PAUSED, open_invoices=_ON_STOP),
        **_refuse("the subscription is already canceled", _S.CANCELED),
    },
    Event.CANCEL_AT_PERIOD_END: {
        **_same(*_LIVE, _S.UNPAID, _S.PAUSED),
        **_refuse("the subscription is already canceled", _S.CANCELED),
    },
    Event.PAUSE: {
        **_to(_S.PAUSED, *_LIVE, open_invoices=_ON_STOP),
        **_refuse("cannot pause an unpaid subscription: it issues no invoices until paid",
                  _S.UNPAID),
        **_refuse("the subscription is already paused", _S.PAUSED),
        **_refuse("cannot pause a canceled subscription", _S.CANCELED),
    },
    Event.RESUME: {
        _S.PAUSED: Decision(_S.ACTIVE, restart_billing=True,
                            open_invoices=OpenInvoices.RESUME_COLLECTING),
        **_refuse("only a paused subscription can be resumed (this one is {status})",
                  *_LIVE, _S.UNPAID, _S.CANCELED),
    },
}

BILLABLE = frozenset(s for s, d in _TABLE[Event.RENEWAL_DUE].items() if d.issue_invoice)
"""Statuses in which renewals issue invoices."""
COLLECTABLE = frozenset(s for s, d in _TABLE[Event.RETRY_DUE].items() if d.charge)
"""Statuses in which an open invoice is charged when due."""


def decide(status: Status, event: Event,
           policy: LifecyclePolicy = LifecyclePolicy()) -> Decision:
    """What ``event`` does to a subscription that is ``status``, under ``policy``.

    >>> decide(Status.CANCELED, Event.RETRY_DUE).charge
    False
    >>> decide(Status.PAST_DUE, Event.PAID_UP).after.value
    'active'
    """
    decision = _TABLE[event][status]
    if decision.open_invoices is _ON_STOP:
        choice = policy.on_pause if event is Event.PAUSE or (
            event is Event.RETRY_DUE and status is Status.PAUSED) else policy.on_cancel
        fate = _STOP if choice is OnStop.KEEP_OPEN else _WRITE_OFF
        decision = replace(decision, open_invoices=fate)
    return decision


def _cell(before: Status, d: Decision) -> str:
    if d.refused is not None:
        return "refused"
    parts = [d.after.value if d.after is not before else "="]
    for flag, text in ((d.issue_invoice, "invoice"), (d.charge, "charge"),
                       (d.dunning, "dunning"), (d.restart_billing, "restart billing"),
                       (d.alert is not None, "alert")):
        if flag:
            parts.append(text)
    if d.open_invoices is not OpenInvoices.UNCHANGED:
        parts.append(d.open_invoices.value.replace("_", " "))
    return ", ".join(parts)


def render_table(policy: LifecyclePolicy = LifecyclePolicy()) -> str:
    """The table as Markdown, one row per event and one column per status."""
    head = "| when | " + " | ".join(s.value for s in Status) + " |"
    rule = "|---|" + "---|" * len(Status)
    rows = [f"| {EVENT_TEXT[e]} | " + " | ".join(_cell(s, decide(s, e, policy)) for s in Status)
            + " |" for e in Event]
    return "\n".join([head, rule, *rows])
