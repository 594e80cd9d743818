"""Send leases: a sender only sends inside its lease, leases run from when they are taken, and a
"not sent" from a sender whose attempt was taken over cannot close it (which would let the next
tick charge again under a new order number while the taken-over send may have charged)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from billing.clock import FixedClock
from billing.domain.payments import Outcome, OutcomeKind
from billing.sandbox import SandboxServer, cards
from billing.services import reconcile
from billing.services.collection import Recorder, _send_to, collect_due, create_intents, record_many
from billing.services.ports import Deps
from billing.store.engine import Store
from billing.store.models import PaymentAttempt
from billing.store.uow import UnitOfWork
from tests.receiver.helpers import subscribe


def attempts(store: Store) -> list[tuple[int, str]]:
    with UnitOfWork(store) as uow:
        rows = uow.session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id))
        return [(a.attempt_no, a.state) for a in rows]


def test_a_lease_runs_from_when_it_is_taken_not_from_when_the_tick_started(
    deps: Deps, clock: FixedClock, sandbox: SandboxServer
) -> None:
    subscribe(deps, cards.APPROVE)
    tick_started = clock.now()
    clock.advance(timedelta(minutes=10))  # a long billing day: this claim comes much later
    [intent], _ = create_intents(deps, tick_started, 10)
    assert intent.lease_until == clock.now() + deps.config.send_lease


def test_a_send_whose_lease_ran_short_in_the_queue_is_not_sent(
    deps: Deps, clock: FixedClock, sandbox: SandboxServer, store: Store
) -> None:
    subscribe(deps, cards.APPROVE)
    [intent], _ = create_intents(deps, clock.now(), 10)
    clock.advance(deps.config.send_lease - deps.config.send_margin / 2)
    recorder = Recorder(deps)
    _send_to(deps, recorder, intent, None)
    assert recorder.close() == ["failed_not_sent"]
    assert sandbox.ledger().charges(intent.mch_order_no) == 0
    assert attempts(store) == [(1, "failed_not_sent")]


def test_a_not_sent_from_a_sender_whose_attempt_was_taken_over_changes_nothing(
    deps: Deps, clock: FixedClock, sandbox: SandboxServer, store: Store
) -> None:
    subscribe(deps, cards.APPROVE)
    [intent], _ = create_intents(deps, clock.now(), 10)
    clock.advance(deps.config.send_lease + timedelta(seconds=1))
    [taken] = reconcile._claim(deps, clock.now(), 10)  # the lease expired: reconcile takes over
    # The first sender comes back late and says "not sent" (e.g. a connect timeout).
    stale = Outcome(OutcomeKind.NOT_SENT, reason="connect timeout",
                    lease_until=intent.lease_until)
    assert record_many(deps, [(intent.attempt_id, stale)]) == ["sending"]
    # Reconciliation finds no such order and sends the same order number: charged once.
    assert reconcile.resolve(deps, taken, clock.now()) == "succeeded"
    assert attempts(store) == [(1, "succeeded")]
    assert sandbox.ledger().charges(intent.mch_order_no) == 1
    assert collect_due(deps).attempts == 0  # paid: nothing left to charge
