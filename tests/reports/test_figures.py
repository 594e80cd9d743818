"""Every figure of the February report, against numbers worked out by hand from the scenario
(tests/reports/scenario.py), on SQLite and PostgreSQL.

Prices: starter 19.00, pro 49.00, coffee-weekly 18.50, pro-annual 490.00. The range is
[Feb 1 05:00Z, Mar 1 05:00Z) (Toronto midnights); the report is made on Mar 3.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from pydantic import SecretStr

from billing.reports import build_report, report_range
from billing.reports.figures import Cash, MrrMonth, PlanLine, Tally
from billing.sandbox import cards
from billing.services.cards import add_direct
from billing.services.customers import add_customer
from billing.services.paynow import PayNowResult, confirm_pay_now, start_pay_now
from billing.store.engine import Store
from billing.store.uow import UnitOfWork
from tests.engine.harness import PLANS, at
from tests.reports.conftest import February, running_world
from tests.reports.scenario import REPORT_AT, TIMEZONE

STARTER, PRO, WEEKLY, ANNUAL = 1900, 4900, 1850, 49000


def half_up(value: Fraction) -> int:
    return (value.numerator * 2 + value.denominator) // (value.denominator * 2)


# cat's upgrade on Feb 5 12:00Z, in the period Jan 15 05:00Z .. Feb 15 05:00Z (31 days):
# (49.00 - 19.00) x the remaining 9 days 17 hours of 31 days = 9.3951... -> 9.40
CAT_PRORATION = half_up(Fraction((PRO - STARTER) * (9 * 86400 + 17 * 3600), 31 * 86400))
# MRR per subscription: monthly plans count as their price whatever the month's length; a
# year is 12 months; a week is 7 of the 30.436875 days of an average month.
ANNUAL_MRR = half_up(Fraction(ANNUAL, 12))
WEEKLY_MRR = half_up(Fraction(WEEKLY) * Fraction("30.436875") / 7)


def test_the_hand_worked_constants() -> None:
    assert (CAT_PRORATION, ANNUAL_MRR, WEEKLY_MRR) == (940, 4083, 8044)


def test_invoice_outcomes(february: February) -> None:
    assert february.report.invoices == {"CAD": {
        # gus, hal, ben, fay, ivy (new); ann, dan, eve (Feb 15 renewals at 19.00); cat's
        # proration and renewal at 49.00; kim's three weeks (Feb 10, 17, 24)
        "issued": Tally(13, 8 * STARTER + CAT_PRORATION + PRO + 3 * WEEKLY),
        # all but hal and ivy (never paid); jay's invoice is January's
        "paid": Tally(11, 6 * STARTER + CAT_PRORATION + PRO + 3 * WEEKLY),
        # gus, hal, fay, ivy had declines in February; jay's were all in January, and
        # ivy's March 2 retry is after the range
        "failed": Tally(4, 4 * STARTER),
        "refunded": Tally(1, 500),  # ann
        "voided": Tally(1, STARTER),  # ben
    }}


def test_cash_collected_is_charges_minus_refunds_and_voids(february: February) -> None:
    charged = 6 * STARTER + CAT_PRORATION + PRO + 3 * WEEKLY
    cash = february.report.cash
    assert cash == {"CAD": Cash(collected=charged, refunded=500 + STARTER)}
    assert cash["CAD"].net == 22790 - 2400


def test_mrr_and_its_movements_in_february(february: February) -> None:
    # Feb 1: ann, cat, eve at 19.00, dan at 49.00, jay's annual (still in dunning)
    start = 3 * STARTER + PRO + ANNUAL_MRR
    # Mar 1: ann, ben, dan (downgraded), fay, gus, ivy (in dunning) at 19.00, cat at 49.00,
    # kim's week; eve and hal canceled, jay suspended (unpaid) on Feb 14
    end = 6 * STARTER + PRO + WEEKLY_MRR
    assert february.report.mrr == {"CAD": [MrrMonth(
        "2026-02", start=start, end=end,
        new=4 * STARTER,  # ben, fay, gus, ivy (hal came and went between the two points)
        expansion=PRO - STARTER,  # cat
        contraction=PRO - STARTER,  # dan
        churn=STARTER + ANNUAL_MRR,  # eve, jay
        reactivation=WEEKLY_MRR,  # kim, back from a pause
    )]}
    assert (start, end) == (14683, 24344)


def test_the_movements_add_up_month_by_month_over_a_longer_range(february: February) -> None:
    rng = report_range(date(2026, 1, 1), date(2026, 3, 31), TIMEZONE, REPORT_AT)
    months = build_report(february.store, rng).mrr["CAD"]
    january_new = 3 * STARTER + PRO + ANNUAL_MRR  # kim paused before Feb 1: not there
    assert [(m.month, m.start, m.end) for m in months] == [
        ("2026-01", 0, january_new), ("2026-02", january_new, 24344),
        ("2026-03", 24344, 24344)]  # March up to Mar 3 noon: nothing moved
    assert months[0].new == january_new and months[2] == MrrMonth("2026-03", 24344, 24344)
    for m in months:
        assert m.end == m.start + m.new + m.expansion + m.reactivation - m.contraction - m.churn


def test_subscriptions_by_plan_at_the_end(february: February) -> None:
    assert february.report.plans == [
        PlanLine("coffee-weekly", "Coffee of the week", "CAD", 1, 0, WEEKLY_MRR),
        PlanLine("pro-monthly", "Pro", "CAD", 1, 0, PRO),  # cat
        # ann, ben, dan, fay, gus, ivy; lea's trial ends Mar 6
        PlanLine("starter-monthly", "Starter", "CAD", 6, 1, 6 * STARTER),
    ]  # jay (pro-annual) is suspended, so no line for it


def test_dunning_funnel_and_recovery_rate(february: February) -> None:
    funnel = february.report.dunning["CAD"]
    assert funnel.entered == Tally(4, 4 * STARTER)  # gus, hal, fay, ivy; jay's is January's
    assert funnel.stages == {
        "recovered_by_retry": Tally(1, STARTER),  # fay, same card, Feb 15 retry
        "recovered_by_new_card": Tally(1, STARTER),  # gus, card added Feb 4
        "recovered_by_pay_now": Tally(0, 0),
        "still_open": Tally(1, STARTER),  # ivy
        "written_off": Tally(1, STARTER),  # hal, canceled by dunning Feb 17
    }
    assert funnel.recovery_rate == Fraction(1, 2)


def test_aging_at_the_end_of_february(february: February) -> None:
    assert february.report.aging == {"CAD": {
        "0-30": Tally(1, STARTER),  # ivy, due Feb 25: 4 days
        "31-60": Tally(1, ANNUAL),  # jay, due Jan 15: 45 days; hal's is written off
        "61-90": Tally(0, 0), "90+": Tally(0, 0)}}


def _aging_at(february: February, at: datetime) -> dict[str, Tally]:
    rng = report_range(date(2026, 2, 1), date(2026, 12, 31), TIMEZONE, at)
    return build_report(february.store, rng).aging["CAD"]


def test_aging_buckets_are_whole_days_past_due(february: February) -> None:
    ivy_due = datetime(2026, 2, 25, 5, tzinfo=UTC)
    # 31 days past due exactly is the second bucket; a second less is still the first
    assert _aging_at(february, ivy_due + timedelta(days=31))["31-60"] == Tally(1, STARTER)
    assert _aging_at(february, ivy_due + timedelta(days=31, seconds=-1))["0-30"] == Tally(
        1, STARTER)
    late = _aging_at(february, datetime(2026, 5, 1, 12, tzinfo=UTC))  # nothing paid since
    assert late == {"0-30": Tally(0, 0), "31-60": Tally(0, 0),
                    "61-90": Tally(1, STARTER),  # ivy: 65 days
                    "90+": Tally(1, ANNUAL)}  # jay: 106 days


def test_a_range_in_january_does_not_see_february(february: February) -> None:
    rng = report_range(date(2026, 1, 1), date(2026, 1, 31), TIMEZONE, REPORT_AT)
    report = build_report(february.store, rng)
    assert report.dunning["CAD"].entered == Tally(1, ANNUAL)  # jay, January 15
    # as of Feb 1 jay was neither paid, written off nor suspended: still open
    assert report.dunning["CAD"].stages["still_open"] == Tally(1, ANNUAL)
    assert report.invoices["CAD"]["refunded"] == Tally(0, 0)
    assert report.aging["CAD"]["0-30"] == Tally(1, ANNUAL)  # 17 days past due on Feb 1


def test_an_invoice_recovered_by_a_pay_now_counts_as_pay_now(store: Store) -> None:
    """Declined on its due date, then paid by the customer on the hosted page: pay-now, not
    retry (same card on file) nor new card, and counted once."""
    with running_world(store) as world:
        world.customer("una", cards.DECLINE_INSUFFICIENT_FUNDS, tz=TIMEZONE)
        world.subscribe("una", "starter-monthly", trial_days=0)
        world.tick()
        [invoice] = world.invoices()
        assert invoice.status == "open" and invoice.dunning_started_at is not None
        world.clock.set(world.clock.now() + timedelta(hours=2))
        hosted = start_pay_now(world.deps, invoice.id)
        form = {"cardNum": cards.APPROVE, "expiryDate": "1230", "holder": "Una", "cvv": "123"}
        back = requests.post(hosted, data=form, allow_redirects=False, timeout=10)
        order = parse_qs(urlsplit(back.headers["location"]).query)["order"][0]
        assert confirm_pay_now(world.deps, order) is PayNowResult.PAID
        world.sandbox.wait_for_notifies(5.0)
        assert world.settle(world.notifies_applied)
        world.assert_exactly_once()
    rng = report_range(date(2026, 1, 1), date(2026, 1, 31), TIMEZONE, at("2026-01-20"))
    funnel = build_report(store, rng).dunning["CAD"]
    assert funnel.entered == Tally(1, STARTER)
    assert funnel.stages["recovered_by_pay_now"] == Tally(1, STARTER)
    assert funnel.stages["recovered_by_retry"] == Tally(0, 0)
    assert funnel.stages["recovered_by_new_card"] == Tally(0, 0)


TAXES = 'taxes:\n  - {name: HST, rate: "13", provinces: ["ON"]}\n'


def test_mrr_is_before_tax_while_invoices_and_cash_include_it(store: Store,
                                                              tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    shutil.copytree(PLANS, plans)
    (plans / "taxes.yaml").write_text(TAXES)
    with running_world(store) as world:
        world.apply_plans(plans)
        with UnitOfWork(store) as uow:
            add_customer(uow, world.clock, external_id="tom", email="tom@example.com",
                         name="Tom", timezone=TIMEZONE, province="ON")
        add_direct(world.deps, "tom", number=SecretStr(cards.APPROVE), cvv=SecretStr("123"),
                   expiry="1230", holder="Tom")
        world.subscribe("tom", "starter-monthly", trial_days=0)
        world.tick()
    rng = report_range(date(2026, 1, 1), date(2026, 1, 31), TIMEZONE, at("2026-01-20"))
    report = build_report(store, rng)
    with_tax = STARTER + STARTER * 13 // 100  # 19.00 + 2.47 HST
    assert report.invoices["CAD"]["issued"] == Tally(1, with_tax)
    assert report.cash["CAD"] == Cash(collected=with_tax, refunded=0)
    assert [(m.month, m.new, m.end) for m in report.mrr["CAD"]] == [("2026-01", STARTER, STARTER)]
