"""A late payment's notify racing a credit on the same invoice (review finding 2).

The notify path locks the attempt; ``apply_outcome`` must also lock the invoice before deciding
whether the invoice still needs the money, or a credit committed meanwhile is overwritten: the
invoice ends paid beyond its total with nothing refunded. Here the credit holds the invoice's
lock while the notify runs, exactly as ``credits.give_credit`` does, and commits only once the
notify is seen waiting on a lock in PostgreSQL (no sleeps deciding the interleaving).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from billing.domain.payments import (
    AttemptSource,
    AttemptState,
    Claims,
    Outcome,
    OutcomeKind,
    Source,
)
from billing.sandbox import cards
from billing.services.invoicing import reduce_open_invoice
from billing.services.payments import apply_outcome
from billing.services.ports import Deps
from billing.store.engine import Store
from billing.store.models import Alert, Invoice, PaymentAttempt, Refund
from billing.store.uow import UnitOfWork
from tests.receiver.helpers import subscribe, wait_until


def _watched_page(deps: Deps, store: Store) -> tuple[int, int, int]:
    """An open invoice whose pay-now page was abandoned (watched) for its whole total."""
    subscribe(deps, cards.APPROVE)
    now = deps.clock.now()
    with UnitOfWork(store) as uow:
        inv = uow.session.scalar(select(Invoice))
        assert inv is not None
        inv.next_attempt_at, inv.attempt_count = None, 1
        att = PaymentAttempt(invoice_id=inv.id, attempt_no=1, mch_order_no="PFX-1-01-AAAAAA",
                             amount=inv.total, currency=inv.currency, gateway_card_id="",
                             state=AttemptState.WATCHED, created_at=now - timedelta(hours=2),
                             sent_at=now - timedelta(hours=2), check_count=3,
                             source=AttemptSource.PAY_NOW, expires_at=now - timedelta(hours=1))
        uow.session.add(att)
        uow.commit()
        return inv.id, att.id, inv.total


def _waiting_on_a_lock(store: Store) -> bool:
    with store.engine.connect() as conn:
        return bool(conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")))


@pytest.mark.postgresql_only
def test_a_late_notify_waiting_on_a_credit_refunds_instead_of_overpaying(
    deps: Deps, store: Store,
) -> None:
    invoice_id, attempt_id, total = _watched_page(deps, store)
    now = deps.clock.now()
    with UnitOfWork(store) as credit:
        locked = credit.session.get(Invoice, invoice_id, with_for_update=True)
        assert locked is not None
        reduce_open_invoice(credit.session, locked, 200, now, description="downgrade credit",
                            period_end=locked.period_end)
        credit.session.flush()
        errors: list[BaseException] = []

        def notify() -> None:  # what notifications._apply_payment does with a paid notify
            try:
                with UnitOfWork(store) as uow:
                    attempt = uow.session.get(PaymentAttempt, attempt_id, with_for_update=True)
                    assert attempt is not None
                    apply_outcome(uow.session, attempt, Outcome(
                        OutcomeKind.PAID, Source.NOTIFY, Claims(
                            mch_order_no=attempt.mch_order_no, amount=total, currency="CAD",
                            pay_order_id="P0001", status=2)), now, deps.config)
                    uow.commit()
            except BaseException as exc:  # reported to the test thread below
                errors.append(exc)

        thread = threading.Thread(target=notify)
        thread.start()
        assert wait_until(lambda: _waiting_on_a_lock(store), timeout=10)
        credit.commit()
    thread.join(20)
    assert not thread.is_alive() and errors == []
    with UnitOfWork(store) as uow:
        inv = uow.session.get(Invoice, invoice_id)
        attempt = uow.session.get(PaymentAttempt, attempt_id)
        assert inv is not None and attempt is not None
        assert (inv.status, inv.total, inv.amount_paid) == ("open", total - 200, 0)
        assert attempt.state == AttemptState.DUPLICATE
        refund = uow.session.scalar(select(Refund))
        assert refund is not None and (refund.amount, refund.state) == (total, "sending")
        assert [a.key for a in uow.session.scalars(select(Alert))] == [
            f"double_charge:{attempt.mch_order_no}"]
