"""The February the report tests check, built day by day through the real services.

All customers are in America/Toronto, as is the merchant (UTC-5 all month: a local midnight is
05:00 UTC). The report covers 2026-02-01..2026-02-28, i.e. [Feb 1 05:00Z, Mar 1 05:00Z), and is
made on Mar 3 at noon, after things that must *not* count (gus's March renewal, ivy's March
retry). Plans: starter-monthly 19.00, pro-monthly 49.00 (+25.00 setup), coffee-weekly 18.50,
pro-annual 490.00 (lenient dunning: mark_unpaid after 30 days).

======  ===========================================================================
who     what happens
======  ===========================================================================
ann     starter since Jan 15; Feb 15 renewal paid, 5.00 of it refunded on Feb 20
cat     starter since Jan 15; upgraded to pro *now* on Feb 5 (proration invoice);
        Feb 15 renewal at 49.00                                     -> expansion
dan     pro since Jan 15; downgrade to starter asked Feb 3, applied Feb 15 -> contraction
eve     starter since Jan 15; Feb 15 renewal paid; canceled now Feb 20     -> churn
jay     pro-annual Jan 15, declined for good; dunning (January) marks the
        subscription unpaid on Feb 14                                       -> churn
kim     coffee-weekly Jan 15, paused Jan 23 (absent on Feb 1), resumed Feb 10
                                                                     -> reactivation
gus     starter Feb 2, declined twice, paid Feb 5 with a card added Feb 4
                                                          -> new, recovered by new card
hal     starter Feb 3, declined until dunning cancels it Feb 17   -> written off
ben     starter Feb 10, paid, payment voided the same day               -> new
fay     starter Feb 12, declined twice, paid by the Feb 15 retry  -> new, recovered by retry
lea     starter Feb 20 with its 14-day trial: trialing at the end
ivy     starter Feb 25, declined, still in dunning at the end         -> new, still open
======  ===========================================================================
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr

from billing.sandbox import cards
from billing.services.cards import add_direct
from billing.services.refunds import refund_invoice
from billing.services.subscriptions import cancel, change_plan, pause, resume
from billing.store.uow import UnitOfWork
from tests.engine.harness import World, at

TIMEZONE = "America/Toronto"
START = at("2026-01-15")
REPORT_AT = datetime(2026, 3, 3, 12, tzinfo=UTC)


def _latest_number(world: World, sub: int) -> str:
    return world.invoices(sub)[-1].number


def build_february(world: World) -> dict[str, str]:
    """Play the month (see the module docstring); returns invoice numbers by name."""
    w, store, clock = world, world.deps.store, world.clock
    subs: dict[str, int] = {}
    for name, card in (("ann", cards.APPROVE), ("cat", cards.APPROVE), ("dan", cards.APPROVE),
                       ("eve", cards.APPROVE), ("jay", cards.DECLINE_INSUFFICIENT_FUNDS),
                       ("kim", cards.APPROVE)):
        w.customer(name, card)
    for name, plan in (("ann", "starter-monthly"), ("cat", "starter-monthly"),
                       ("dan", "pro-monthly"), ("eve", "starter-monthly"),
                       ("jay", "pro-annual"), ("kim", "coffee-weekly")):
        subs[name] = w.subscribe(name, plan, trial_days=0)
    w.run_until(at("2026-01-23"))
    with UnitOfWork(store) as uow:
        pause(uow, clock, subs["kim"])
    w.run_until(at("2026-02-02"))
    w.customer("gus", cards.DECLINE_INSUFFICIENT_FUNDS)
    subs["gus"] = w.subscribe("gus", "starter-monthly", trial_days=0)
    w.run_until(at("2026-02-03"))
    with UnitOfWork(store) as uow:
        change_plan(uow, clock, subs["dan"], plan="starter-monthly")  # cheaper: at period end
    w.customer("hal", cards.DECLINE_INSUFFICIENT_FUNDS)
    subs["hal"] = w.subscribe("hal", "starter-monthly", trial_days=0)
    w.run_until(at("2026-02-04"))
    add_direct(w.deps, "gus", number=SecretStr(cards.APPROVE), cvv=SecretStr("123"),
               expiry="1230", holder="Gus")
    w.run_until(at("2026-02-05"))
    with UnitOfWork(store) as uow:
        change_plan(uow, clock, subs["cat"], plan="pro-monthly", when="now")
    w.run_until(at("2026-02-10"))
    w.customer("ben", cards.APPROVE)
    subs["ben"] = w.subscribe("ben", "starter-monthly", trial_days=0)
    with UnitOfWork(store) as uow:
        resume(uow, clock, subs["kim"])
    w.tick()
    refund_invoice(w.deps, _latest_number(w, subs["ben"]), void=True)
    w.run_until(at("2026-02-12"))
    w.customer("fay", cards.DECLINE_TWICE_THEN_APPROVE)
    subs["fay"] = w.subscribe("fay", "starter-monthly", trial_days=0)
    w.run_until(at("2026-02-20"))
    with UnitOfWork(store) as uow:
        cancel(uow, clock, subs["eve"], at_period_end=False)
    refund_invoice(w.deps, _latest_number(w, subs["ann"]), amount=500)
    w.customer("lea", cards.APPROVE)
    subs["lea"] = w.subscribe("lea", "starter-monthly")  # the plan's 14-day trial
    w.run_until(at("2026-02-25"))
    w.customer("ivy", cards.DECLINE_INSUFFICIENT_FUNDS)
    subs["ivy"] = w.subscribe("ivy", "starter-monthly", trial_days=0)
    w.run_until(REPORT_AT)
    return {f"{name}.{i}": inv.number for name, sub in subs.items()
            for i, inv in enumerate(w.invoices(sub))}
