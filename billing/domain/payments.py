"""Payment attempts as a pure state machine: ``decide(attempt, outcome, at) -> AttemptDecision``.

An attempt is committed in ``sending`` before its request leaves. Everything the engine later
learns about it (the purchase reply, a signed notify, a ``cc_query`` answer, a transit failure,
the sender noticing it must not send) arrives as an ``Outcome``, and ``decide`` is the one place
that says what the attempt becomes and what its invoice must do (``Effect``). The translations
from gateway replies and exceptions to outcomes live in ``billing.gateway.outcomes``.

The rules are a join on this order, so any arrival order of the same facts ends in the same state::

    sending < unknown < pending < watched < failed < succeeded = duplicate
    failed_not_sent: only from sending

* An answer that contradicts what was asked (order number, amount, currency, merchant, card,
  or an already known gateway order id) is a **discrepancy**: it changes nothing but the alert,
  and the attempt waits for a query (``unknown``), never for a new order number.
* ``paid`` wins over everything: a success proven by the gateway is recorded even after a
  decline or a "not sent", because the money moved.
* A decline, a refusal or a "not sent" never overrides a final state; ``pending`` and
  ``unknown`` only ever wait for the next query; "no such order" re-sends the *same* number, and
  a re-send that is refused or never leaves proves nothing about the first request: the attempt
  stays unresolved (only the first send of a fresh attempt can end in ``failed_not_sent``).
* A "not sent" only speaks for the sender that held the lease: once another worker took the
  attempt over (a newer lease), that worker may have sent it.

Pay-now attempts (``AttemptSource.PAY_NOW``) are the customer's own payment on the gateway's
hosted ``cc_purchase`` page, so three rules differ, all of them here and nowhere else:

* a decline, a refusal or a "not sent" ends the attempt with ``Effect.RELEASE``: the invoice is
  left as it was (no dunning step, no retry spent), because the customer, not the schedule, tried;
* "no such order" means the customer has not submitted the page yet: it is never re-sent (only
  the customer can pay a hosted page), it is looked up again until ``expires_at``, and after that
  the attempt ends as **abandoned**, again with ``Effect.RELEASE``;
* an abandoned page is not forgotten: the attempt becomes **watched** (``Effect.WATCH``), outside
  the in-flight set (it blocks neither a retry nor a new click) but still looked up on the
  backoff for ``PAY_NOW_WATCH`` after ``expires_at``, because the customer can still pay the
  open page and its notify may never come; a late "paid" is recorded like any other, and only
  at the end of the window, on the gateway's "no such order", does a watched attempt end
  ``failed`` (an order still processing, or a gateway that cannot be asked, stays watched on
  the daily backoff and is flagged ``overdue`` so that a person looks);
* an order still unsettled (status 0/1), or without a usable answer, ``PAY_NOW_GRACE`` after
  ``expires_at`` is watched too: it no longer holds the invoice, and a late "paid" still counts.

A success the invoice did not need (it was already paid, credited or voided, or the amount is
not what is due) ends ``duplicate``: final, outside both partial unique indexes, refunded and
alerted by the services (``billing.services.payments``), never counted as a recovery.

Worked example: a purchase times out (``unknown``: query in 1 min), the notify arrives (``paid``:
settle the invoice), the query then answers status 2 (``paid`` again: nothing to do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum

from billing.domain.cards import card_expired


class AttemptState(StrEnum):
    SENDING = "sending"
    PENDING = "pending"
    UNKNOWN = "unknown"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    FAILED_NOT_SENT = "failed_not_sent"
    WATCHED = "watched"
    """A pay-now page abandoned (or never settled) in time: not in flight, still looked up."""
    DUPLICATE = "duplicate"
    """Proven paid, but the invoice did not need it (already paid, credited, other amount)."""


IN_FLIGHT = frozenset({AttemptState.SENDING, AttemptState.PENDING, AttemptState.UNKNOWN})
FINAL = frozenset({AttemptState.SUCCEEDED, AttemptState.FAILED, AttemptState.FAILED_NOT_SENT,
                   AttemptState.DUPLICATE})
PAID_STATES = frozenset({AttemptState.SUCCEEDED, AttemptState.DUPLICATE})
"""The money moved: nothing the gateway says later changes these."""

_RANK = {AttemptState.SENDING: 0, AttemptState.UNKNOWN: 1, AttemptState.PENDING: 2,
         AttemptState.WATCHED: 3, AttemptState.FAILED: 4, AttemptState.SUCCEEDED: 5,
         AttemptState.FAILED_NOT_SENT: 4, AttemptState.DUPLICATE: 5}

PAY_NOW_WATCH = timedelta(days=7)
"""How long after its ``expires_at`` an abandoned hosted page is still looked up: the assumed
longest life of a gateway-hosted ``cc_purchase`` page (IOTPay documents none). A payment made
on the page later than this is not found by the engine (the operator's reconciliation is)."""
PAY_NOW_GRACE = timedelta(days=1)
"""How long after ``expires_at`` a hosted order still unsettled (status 0/1) or unanswered may
hold its invoice before it is watched instead, so retries and dunning go on."""


class AttemptSource(StrEnum):
    """What started an attempt; the reports count recoveries by it and ``decide`` reads it."""

    SCHEDULED = "scheduled"
    """The collection tick: a renewal's first charge or a dunning retry, on the vaulted card."""
    PAY_NOW = "pay_now"
    """The customer, from a pay-now link: the gateway's hosted ``cc_purchase`` page."""


class DeclineKind(StrEnum):
    HARD = "hard"
    """The card cannot pay as it is (it has expired): no retry until the card changes."""
    SOFT = "soft"
    """Might pass later (funds, limits, issuer busy, any reason not proven hard): retry on the
    plan's schedule, which is finite."""
    SETUP = "setup"
    """Not a decline: the gateway refused the request itself (``retCode=FAIL``: sign, merchant,
    parameters). The merchant's set-up must be fixed; the customer is not dunned."""


def decline_kind(expiry: str | None, at: datetime) -> DeclineKind:
    """Hard only when a field proves the card cannot pay (its MMYY expiry is past at ``at``),
    never from the wording of ``retMsg``: an unknown reason is soft, so no customer is dropped
    from retries by a phrase, and the retry schedule bounds how often a soft one is tried.

    >>> from datetime import UTC, datetime
    >>> decline_kind("0125", datetime(2026, 3, 1, tzinfo=UTC)).value
    'hard'
    >>> decline_kind("1230", datetime(2026, 3, 1, tzinfo=UTC)).value
    'soft'
    """
    return DeclineKind.HARD if expiry is not None and card_expired(expiry, at) else (
        DeclineKind.SOFT)


class OrderStatus(IntEnum):
    """The gateway's order ``status`` codes."""

    PENDING = 0
    UNKNOWN = 1
    SUCCESS = 2
    SUCCESS_NOTIFIED = 3
    FAILED = 9


class OutcomeKind(StrEnum):
    PAID = "paid"
    """Status 2 or 3: the money moved."""
    DECLINED = "declined"
    """Status 9: definitely not charged."""
    UNSETTLED = "unsettled"
    """Status 0, 1, missing or unlisted: ask again later, never charge meanwhile."""
    REJECTED = "rejected"
    """``retCode=FAIL`` to a purchase: the request was refused, nothing charged."""
    NOT_FOUND = "not_found"
    """``cc_query``: the gateway has no such order, so the request never took effect."""
    NO_ANSWER = "no_answer"
    """A query that answered nothing usable: learn nothing, ask again later."""
    UNKNOWN = "unknown"
    """A transit failure after the request may have left: resolve with ``cc_query``."""
    NOT_SENT = "not_sent"
    """The request provably never reached the gateway (or this sender chose not to send)."""


class Source(StrEnum):
    PURCHASE = "purchase"
    NOTIFY = "notify"
    QUERY = "query"
    RESEND = "resend"


@dataclass(frozen=True)
class Claims:
    """What a gateway answer asserts about the order; ``None`` where it says nothing."""

    mch_order_no: str | None = None
    amount: int | None = None
    currency: str | None = None
    mch_id: str | None = None
    card_id: str | None = None
    pay_order_id: str | None = None
    status: int | None = None
    expiry: str | None = None


@dataclass(frozen=True)
class Outcome:
    """One fact about an attempt, from one source."""

    kind: OutcomeKind
    source: Source = Source.PURCHASE
    claims: Claims = field(default_factory=Claims)
    reason: str | None = None
    lease_until: datetime | None = None
    """The send lease the sender held, for ``not_sent``: it only counts under that lease."""


@dataclass(frozen=True)
class Attempt:
    """What the engine asked for, and where the attempt stands: the facts ``decide`` reads."""

    mch_order_no: str
    amount: int
    currency: str
    state: AttemptState
    mch_id: str | None = None
    card_id: str | None = None
    pay_order_id: str | None = None
    lease_until: datetime | None = None
    card_expiry: str | None = None
    source: AttemptSource = AttemptSource.SCHEDULED
    expires_at: datetime | None = None
    """For a pay-now attempt: when its hosted page counts as abandoned if nothing was paid."""


class Effect(StrEnum):
    NONE = "none"
    SETTLE = "settle"
    """Mark the invoice paid by this attempt (or raise a double-charge alert if another paid)."""
    DECLINE = "decline"
    """Put the invoice into (or further into) dunning."""
    SETUP_ERROR = "setup_error"
    """Back the invoice off and alert once per cause; no dunning, the customer did nothing."""
    RETRY_SOON = "retry_soon"
    """Nothing reached the gateway: the invoice may get a new attempt shortly."""
    CHECK_LATER = "check_later"
    """Schedule the next ``cc_query``."""
    RESEND_SAME_ORDER = "resend_same_order"
    """The gateway has no such order: send it again under the same number."""
    DISCREPANCY = "discrepancy"
    """The answer does not match the attempt: apply nothing, alert, query later."""
    RELEASE = "release"
    """A pay-now attempt ended unpaid (declined, refused, never sent or abandoned): leave the
    invoice exactly as it was, its retry schedule and dunning untouched."""
    WATCH = "watch"
    """A pay-now page's time is over unpaid: release the invoice as ``RELEASE`` does, but keep
    looking the order up (``watched``) in case the customer pays the still-open page."""


@dataclass(frozen=True)
class AttemptDecision:
    state: AttemptState
    effect: Effect
    pay_order_id: str | None = None
    gateway_status: int | None = None
    reason: str | None = None
    decline: DeclineKind | None = None
    mismatched: tuple[str, ...] = ()
    overdue: bool = False
    """A watched page past its watch window that the gateway still reports as processing or
    cannot be asked about: it is kept watched (it may yet be paid) and a person must look; the
    services raise ``alert.pay_now_watch_overdue`` once for it."""

    @property
    def changed(self) -> bool:
        return self.effect is not Effect.NONE


def mismatches(attempt: Attempt, claims: Claims) -> tuple[str, ...]:
    """The fields on which ``claims`` contradict ``attempt`` (absent claims contradict nothing).

    >>> a = Attempt("K-1", 1900, "CAD", AttemptState.SENDING, mch_id="10000701")
    >>> mismatches(a, Claims(mch_order_no="K-1", amount=2500, currency="CAD"))
    ('amount',)
    """
    pairs = (("mch_order_no", attempt.mch_order_no, claims.mch_order_no),
             ("amount", attempt.amount, claims.amount),
             ("currency", attempt.currency, claims.currency),
             ("mch_id", attempt.mch_id, claims.mch_id),
             ("card_id", attempt.card_id, claims.card_id),
             ("pay_order_id", attempt.pay_order_id, claims.pay_order_id))
    return tuple(name for name, asked, said in pairs
                 if asked is not None and said is not None and asked != said)


def _join(state: AttemptState, other: AttemptState) -> AttemptState:
    return other if _RANK[other] > _RANK[state] else state


def decide(attempt: Attempt, outcome: Outcome, at: datetime) -> AttemptDecision:
    """What ``attempt`` becomes on learning ``outcome`` at ``at``, and what its invoice must do.

    Deterministic and idempotent: the same outcome twice decides ``Effect.NONE`` the second time.
    """
    state, claims, kind = attempt.state, outcome.claims, outcome.kind
    wrong = mismatches(attempt, claims)
    if wrong:
        after = _join(state, AttemptState.UNKNOWN) if state in IN_FLIGHT else state
        return AttemptDecision(after, Effect.DISCREPANCY, reason=outcome.reason, mismatched=wrong)
    pay_id = attempt.pay_order_id or claims.pay_order_id
    if kind is OutcomeKind.PAID:
        if state in PAID_STATES:
            return AttemptDecision(state, Effect.NONE, pay_id, claims.status)
        return AttemptDecision(AttemptState.SUCCEEDED, Effect.SETTLE, pay_id, claims.status)
    if state in FINAL:
        return AttemptDecision(state, Effect.NONE, pay_id, claims.status)
    mine = outcome.lease_until is None or outcome.lease_until == attempt.lease_until
    if attempt.source is AttemptSource.PAY_NOW or state is AttemptState.WATCHED:
        hosted = _decide_hosted(attempt, outcome, at, mine)
        if hosted is not None:
            return hosted
    if outcome.source is Source.RESEND and kind in (OutcomeKind.NOT_SENT, OutcomeKind.REJECTED):
        # A re-send of an order whose first request may still land: its failure proves nothing
        # about the first one, so the attempt stays unresolved and is looked up again.
        if not mine:
            return AttemptDecision(state, Effect.NONE, pay_id)
        return AttemptDecision(_join(state, AttemptState.UNKNOWN), Effect.CHECK_LATER, pay_id,
                               reason=outcome.reason)
    if kind is OutcomeKind.DECLINED:
        kind_of = decline_kind(claims.expiry or attempt.card_expiry, at)
        return AttemptDecision(AttemptState.FAILED, Effect.DECLINE, pay_id, claims.status,
                               outcome.reason or "declined", kind_of)
    if kind is OutcomeKind.REJECTED:
        return AttemptDecision(AttemptState.FAILED, Effect.SETUP_ERROR, pay_id, None,
                               outcome.reason or "refused by the gateway", DeclineKind.SETUP)
    if kind is OutcomeKind.NOT_SENT:
        if state is AttemptState.SENDING and mine:
            return AttemptDecision(AttemptState.FAILED_NOT_SENT, Effect.RETRY_SOON,
                                   reason=outcome.reason or "not sent")
        return AttemptDecision(state, Effect.NONE, pay_id)
    if kind is OutcomeKind.NOT_FOUND:
        return AttemptDecision(state, Effect.RESEND_SAME_ORDER, pay_id)
    if kind is OutcomeKind.NO_ANSWER:
        return AttemptDecision(state, Effect.CHECK_LATER, pay_id, reason=outcome.reason)
    target = AttemptState.PENDING if kind is OutcomeKind.UNSETTLED else AttemptState.UNKNOWN
    return AttemptDecision(_join(state, target), Effect.CHECK_LATER, pay_id, claims.status,
                           outcome.reason)


RECONCILE_BACKOFF: tuple[timedelta, ...] = (
    timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=1), timedelta(days=1),
)
"""Delay before the n-th query of an unresolved attempt; daily after the last, forever."""

SETUP_ERROR_BACKOFF: tuple[timedelta, ...] = (
    timedelta(hours=1), timedelta(hours=4), timedelta(days=1),
)
"""Delay before charging an invoice again after the n-th consecutive refusal of the request
itself (a set-up error): an hour, four hours, then daily until the set-up is fixed."""


def next_check(at: datetime, checks_done: int) -> datetime:
    """When to query an unresolved attempt again after ``checks_done`` queries."""
    step = RECONCILE_BACKOFF[min(checks_done, len(RECONCILE_BACKOFF) - 1)]
    return at + step


def next_setup_retry(at: datetime, refusals: int) -> datetime:
    """When to charge again after ``refusals`` consecutive set-up refusals (1 or more)."""
    step = SETUP_ERROR_BACKOFF[min(max(refusals, 1), len(SETUP_ERROR_BACKOFF)) - 1]
    return at + step


NONCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32: no I, L, O or U, so a number read aloud or retyped survives."""
NONCE_LENGTH = 6


def order_number(prefix: str, invoice_id: int, attempt_no: int, nonce: str) -> str:
    """The gateway ``mchOrderNo`` of an attempt: at most 30 characters, never issued twice.

    ``prefix`` is random per installation and ``nonce`` random per attempt, so a database
    restored from a backup, which issues the same invoice ids and attempt numbers again, still
    never reuses a number the gateway has already charged (the gateway would answer with the
    old order, another customer's payment).

    >>> order_number("K3F9QZ", 123, 1, "7M2Q9X")
    'K3F9QZ-123-01-7M2Q9X'
    """
    if len(nonce) != NONCE_LENGTH or any(c not in NONCE_ALPHABET for c in nonce):
        raise ValueError(f"an order nonce is {NONCE_LENGTH} base-32 characters")
    number = f"{prefix}-{invoice_id}-{attempt_no:02d}-{nonce}"
    if len(number) > 30:
        raise ValueError(f"order number {number!r} exceeds 30 characters")
    return number


_OUTCOME_TEXT = {
    OutcomeKind.PAID: "paid (status 2/3)",
    OutcomeKind.DECLINED: "declined (status 9)",
    OutcomeKind.UNSETTLED: "unsettled (status 0/1)",
    OutcomeKind.REJECTED: "refused (retCode=FAIL)",
    OutcomeKind.NOT_FOUND: "query: no such order",
    OutcomeKind.NO_ANSWER: "query: no usable answer",
    OutcomeKind.UNKNOWN: "transit failure after sending",
    OutcomeKind.NOT_SENT: "never reached the gateway",
}


def _decide_hosted(attempt: Attempt, outcome: Outcome, at: datetime,
                   mine: bool) -> AttemptDecision | None:
    """The pay-now rules for an attempt not final (``None``: the common rules apply).

    >>> t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> a = Attempt("K-1", 100, "CAD", AttemptState.PENDING, source=AttemptSource.PAY_NOW,
    ...             expires_at=t + timedelta(minutes=30))
    >>> decide(a, Outcome(OutcomeKind.NOT_FOUND, Source.QUERY), t).effect.value
    'check_later'
    >>> late = decide(a, Outcome(OutcomeKind.NOT_FOUND, Source.QUERY), t + timedelta(hours=1))
    >>> late.state.value, late.effect.value
    ('watched', 'watch')
    """
    state, kind, pay_id = attempt.state, outcome.kind, attempt.pay_order_id
    pay_id = pay_id or outcome.claims.pay_order_id
    if kind is OutcomeKind.DECLINED:
        return AttemptDecision(AttemptState.FAILED, Effect.RELEASE, pay_id, outcome.claims.status,
                               outcome.reason or "declined on the hosted page")
    if state is AttemptState.WATCHED:
        return _decide_watched(attempt, outcome, at, pay_id)
    if kind is OutcomeKind.REJECTED:
        return AttemptDecision(AttemptState.FAILED, Effect.RELEASE, pay_id, None,
                               outcome.reason or "refused by the gateway", DeclineKind.SETUP)
    if kind is OutcomeKind.NOT_SENT:
        if state is AttemptState.SENDING and mine:
            return AttemptDecision(AttemptState.FAILED_NOT_SENT, Effect.RELEASE,
                                   reason=outcome.reason or "not sent")
        return AttemptDecision(state, Effect.NONE, pay_id)
    expires = attempt.expires_at
    if kind is OutcomeKind.NOT_FOUND:
        if expires is not None and at >= expires:
            return AttemptDecision(AttemptState.WATCHED, Effect.WATCH, pay_id,
                                   reason="abandoned: the hosted page was not paid in time")
        return AttemptDecision(_join(state, AttemptState.PENDING), Effect.CHECK_LATER, pay_id)
    if kind in (OutcomeKind.UNSETTLED, OutcomeKind.NO_ANSWER):
        if expires is not None and at >= expires + PAY_NOW_GRACE:
            return AttemptDecision(AttemptState.WATCHED, Effect.WATCH, pay_id,
                                   outcome.claims.status,
                                   "not settled a day after the hosted page expired")
        if kind is OutcomeKind.NO_ANSWER:  # as a failed query: a send in doubt is unknown
            return AttemptDecision(_join(state, AttemptState.UNKNOWN), Effect.CHECK_LATER,
                                   pay_id, reason=outcome.reason)
    return None


def _decide_watched(attempt: Attempt, outcome: Outcome, at: datetime,
                    pay_id: str | None) -> AttemptDecision:
    """A watched page (not paid, not declined): looked up again until ``PAY_NOW_WATCH`` after
    its expiry, then closed as abandoned, but only on the gateway's word that nothing was paid
    ("no such order"; a decline is closed earlier, in ``_decide_hosted``). An order still
    processing (status 0/1) or a gateway that cannot be asked proves nothing: closing it would
    forget a payment that may yet settle, so it stays watched on the daily backoff, flagged
    ``overdue`` for the services to alert once. Nothing else moves it (it is never re-sent).

    >>> t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> w = Attempt("K-1", 100, "CAD", AttemptState.WATCHED, source=AttemptSource.PAY_NOW,
    ...             expires_at=t)
    >>> decide(w, Outcome(OutcomeKind.NOT_FOUND, Source.QUERY), t + timedelta(days=1)).effect.value
    'check_later'
    >>> decide(w, Outcome(OutcomeKind.NOT_FOUND, Source.QUERY), t + PAY_NOW_WATCH).state.value
    'failed'
    >>> late = decide(w, Outcome(OutcomeKind.NO_ANSWER, Source.QUERY), t + PAY_NOW_WATCH)
    >>> late.state.value, late.effect.value, late.overdue
    ('watched', 'check_later', True)
    """
    if outcome.kind in (OutcomeKind.REJECTED, OutcomeKind.NOT_SENT):
        return AttemptDecision(AttemptState.WATCHED, Effect.NONE, pay_id)
    over = at >= watch_ends(attempt.expires_at, at)
    if over and outcome.kind is OutcomeKind.NOT_FOUND:
        return AttemptDecision(AttemptState.FAILED, Effect.RELEASE, pay_id,
                               reason="abandoned: the hosted page was not paid in time")
    reason = None
    if over:
        reason = (f"still {_OUTCOME_TEXT[outcome.kind]} after the watch window: "
                  "kept watched until the gateway says paid, declined or not found")
    return AttemptDecision(AttemptState.WATCHED, Effect.CHECK_LATER, pay_id,
                           outcome.claims.status, reason, overdue=over)


def watch_ends(expires_at: datetime | None, at: datetime) -> datetime:
    """When a watched pay-now order stops being looked up (``at`` itself if it has no expiry,
    which only a corrupted row could lack: it is then closed at once)."""
    return at if expires_at is None else expires_at + PAY_NOW_WATCH


def check_after(at: datetime, checks_done: int, expires_at: datetime | None = None) -> datetime:
    """When to query an unresolved attempt next: the usual backoff, but a pay-now attempt
    (``expires_at`` set) is also looked up the moment its hosted page's lifetime ends, so an
    abandoned page is noticed on time.

    >>> t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> check_after(t + timedelta(minutes=20), 2, t + timedelta(minutes=30)) - t
    datetime.timedelta(seconds=1800)
    """
    later = next_check(at, checks_done)
    if expires_at is not None and at < expires_at:
        return min(later, expires_at)
    if expires_at is not None and at < expires_at + PAY_NOW_GRACE:
        return min(later, expires_at + PAY_NOW_GRACE)
    if expires_at is not None and at < watch_ends(expires_at, at):
        return min(later, watch_ends(expires_at, at))
    return later


def render_table() -> str:
    """The state machine as Markdown: one row per outcome (matching the attempt), one column per
    state; a cell is the state after and the effect on the invoice. Any outcome that does not
    match the attempt is a discrepancy whatever the state (not shown). The table is a scheduled
    attempt's, so ``watched`` (a pay-now state only) has no column."""
    states = [s for s in AttemptState if s is not AttemptState.WATCHED]
    head = "| learned | " + " | ".join(s.value for s in states) + " |"
    rule = "|---|" + "---|" * len(states)
    rows = []
    for kind, text in _OUTCOME_TEXT.items():
        cells = []
        for state in states:
            asked = Attempt("K-1", 100, "CAD", state)
            decision = decide(asked, Outcome(kind), datetime(2026, 1, 1, tzinfo=UTC))
            after = "=" if decision.state is state else decision.state.value
            effect = "" if decision.effect is Effect.NONE else f", {decision.effect.value}"
            cells.append(after + effect.replace("_", " "))
        rows.append(f"| {text} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])
