"""The report benchmark: a merchant's report over 1,000,000 invoices on PostgreSQL, timed figure by
figure (see bench/README.md, "The report benchmark", for the figures and how to read them).

What one run of the script does:

1. creates a throwaway database on ``--server-url`` (``billing_bench_report_*``), migrates it
   and stores the example plans (``plans/``) through the services;
2. seeds two years of billing (December 2024 to November 2026) directly in SQL: the population
   of subscriptions (plan, start, how many periods, how it ends) is drawn in Python with a
   seeded RNG and sent with ``COPY``; PostgreSQL then generates every period's invoice, its line,
   its payment attempts, replacement cards, refunds and voids, and the audit events the report
   reads, with ``INSERT ... SELECT`` over ``generate_series``. Exactly ``--invoices`` invoices;
3. builds the report ``--runs`` times for each range (the last month, and all two years), with
   the production code (``billing.reports.build_report``), and prints the median of the whole
   report and of each figure; ``--explain`` also prints ``EXPLAIN (ANALYZE, BUFFERS)`` of every
   statement of one run;
4. drops the database (unless ``--keep-db``).

The mix (per subscription): starter-monthly 55 %, pro-monthly 25 % (with its setup fee),
coffee-weekly 8 %, pro-annual 12 %; starts spread evenly over the two years; churn per period
3 % (monthly), 0.7 % (weekly), 15 % (annual), three quarters canceled by the customer and a
quarter by dunning (annual: marked unpaid instead); 2.5 % of live subscriptions in dunning at
the end. Per invoice: 94 % paid at once, 4 % recovered by a retry, 2 % by a new card; 1.5 % of
paid invoices half refunded, 0.3 % voided.

    .venv/bin/python bench/report.py                 # 1,000,000 invoices, 3 runs per range
    .venv/bin/python bench/report.py --invoices 100000 --runs 1 --explain
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy
from dateutil.relativedelta import relativedelta
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url

from billing.catalog.loader import load_catalog
from billing.clock import FixedClock
from billing.reports import build_report, report_range
from billing.reports.build import FIGURES
from billing.services.catalog import apply_catalog
from billing.store.engine import Store
from billing.store.migrate import upgrade
from billing.store.uow import UnitOfWork

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TIMEZONE = "America/Toronto"
FIRST_DAY = date(2024, 12, 1)
END = datetime(2026, 12, 1, 12, tzinfo=UTC)
"""The seeded history ends here, and the reports are made as of this instant."""
RANGES = {"month": (date(2026, 11, 1), date(2026, 11, 30)),
          "two years": (date(2024, 12, 1), date(2026, 11, 30))}
PLANS = (("starter-monthly", 55, "month"), ("pro-monthly", 25, "month"),
         ("coffee-weekly", 8, "week"), ("pro-annual", 12, "year"))
CHURN = {"month": 0.03, "week": 0.007, "year": 0.15}
TABLES = ("customers", "subscriptions", "cards", "invoices", "invoice_lines", "payment_attempts",
          "refunds", "events")
STEP = {"month": relativedelta(months=1), "week": relativedelta(weeks=1),
        "year": relativedelta(years=1)}


# --- the machine and the database (as bench/billing_day.py does them) -----------------------


def libpq_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def postgres_database(server_url: str, keep: bool) -> Iterator[str]:
    """A new, empty database next to ``server_url``'s, dropped afterwards unless ``keep``."""
    name = f"billing_bench_report_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            if not keep:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def busy_cores_over(window: float) -> float:
    """Cores the whole machine kept busy over ``window`` seconds (``/proc/stat``)."""
    def busy() -> float:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    before = busy()
    time.sleep(window)
    return (busy() - before) / window


def wait_quiet(cores: float, patience: float) -> tuple[float, float]:
    """This machine is shared: wait (at most ``patience`` s) until it is nearly idle."""
    started = time.perf_counter()
    while True:
        now_busy = busy_cores_over(2.0)
        waited = time.perf_counter() - started
        if now_busy < cores or waited >= patience:
            return waited, now_busy


def machine_facts(server_url: str) -> dict[str, str]:
    with psycopg.connect(libpq_dsn(server_url), autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        settings = conn.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers', "
            "'work_mem', 'max_parallel_workers_per_gather', 'jit') ORDER BY name").fetchall()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": f"{os.cpu_count()} (usable {len(os.sched_getaffinity(0))})",
        "cpu": next((line.split(":", 1)[1].strip() for line in
                     Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), platform.processor() or "?"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlalchemy / psycopg": f"{sqlalchemy.__version__} / {psycopg.__version__}",
        "postgresql": str(version[0] if version else "?"),
        "postgresql settings": ", ".join(f"{k}={v}{'x' + u if u else ''}"
                                         for k, v, u in settings),
    }


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))


# --- the population ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sub:
    id: int
    plan: str
    anchor: date
    invoices: int
    fate: str
    """active, canceled (by the customer), dunning (written off, canceled), unpaid (annual:
    marked unpaid), past_due (its last invoice in dunning at the end)."""
    cancel_days: int


def _last_start(anchor: date, unit: str, n: int) -> date:
    result: date = anchor + STEP[unit] * n
    return result


def population(target: int, seed: int) -> list[Sub]:
    """Subscriptions until their invoices add up to exactly ``target``."""
    rng = random.Random(seed)
    end_day = END.date()
    codes = [p[0] for p in PLANS]
    weights = [p[1] for p in PLANS]
    units = {p[0]: p[2] for p in PLANS}
    span = (end_day - FIRST_DAY).days - 3
    subs: list[Sub] = []
    total = 0
    while total < target:
        plan = rng.choices(codes, weights)[0]
        unit = units[plan]
        anchor = FIRST_DAY + timedelta(days=rng.randrange(span))
        possible = 0
        while _last_start(anchor, unit, possible) <= end_day:
            possible += 1
        lived = 1
        while lived < possible and rng.random() >= CHURN[unit]:
            lived += 1
        lived = min(lived, target - total)
        last = _last_start(anchor, unit, lived - 1)
        next_start = _last_start(anchor, unit, lived)
        left = (end_day - last).days
        fate = "active"
        if lived < possible:
            dunning = rng.random() < 0.25
            fate = ("unpaid" if unit == "year" and left > 31 else
                    "dunning" if dunning and unit != "year" and left > 15 else "canceled")
        elif left <= 12 and rng.random() < 0.025:
            fate = "past_due"
        cancel_days = rng.randrange(1, max(2, min((next_start - last).days, left)))
        subs.append(Sub(len(subs) + 1, plan, anchor, lived, fate, cancel_days))
        total += lived
    return subs


SEED_SQL = """
CREATE UNLOGGED TABLE seed_inv AS
SELECT q.*,
  CASE WHEN q.n = q.invoices - 1 AND q.fate IN ('dunning', 'unpaid', 'past_due') THEN q.fate
       WHEN q.period_start > %(end)s - interval '4 days' THEN 'paid'
       WHEN abs(hashint8(q.sub_id * 1000 + q.n)) %% 1000 < 940 THEN 'paid'
       WHEN abs(hashint8(q.sub_id * 1000 + q.n)) %% 1000 < 980 THEN 'retry'
       ELSE 'newcard' END AS outcome,
  CASE WHEN abs(hashint8(q.sub_id * 7919 + q.n)) %% 1000 < 15 THEN 'refund'
       WHEN abs(hashint8(q.sub_id * 7919 + q.n)) %% 1000 < 18 THEN 'void' END AS reversal
FROM (
  SELECT row_number() OVER (ORDER BY s.id, g.n) AS id, s.id AS sub_id, g.n, s.fate, s.invoices,
         s.cancel_days, v.price + CASE WHEN g.n = 0 THEN coalesce(p.setup_fee, 0) ELSE 0 END
           AS total, v.price, p.setup_fee, v.currency,
         ((s.anchor + g.n * st.step)::timestamp AT TIME ZONE %(tz)s) AS period_start,
         ((s.anchor + (g.n + 1) * st.step)::timestamp AT TIME ZONE %(tz)s) AS period_end
  FROM seed_subs s
  JOIN plans p ON p.code = s.plan
  JOIN plan_versions v ON v.plan_id = p.id AND v.version = p.current_version
  CROSS JOIN LATERAL (SELECT CASE v.interval_unit WHEN 'month' THEN interval '1 month'
                             WHEN 'week' THEN interval '7 days' ELSE interval '1 year' END
                             AS step) st
  CROSS JOIN LATERAL generate_series(0, s.invoices - 1) AS g(n)
) q;

ALTER TABLE seed_inv ADD COLUMN issued_at timestamptz, ADD COLUMN dunning_at timestamptz,
  ADD COLUMN paid_at timestamptz, ADD COLUMN failed int;
UPDATE seed_inv SET
  issued_at = period_start + interval '2 hours',
  dunning_at = CASE WHEN outcome <> 'paid' THEN period_start + interval '2 hours 1 minute' END,
  paid_at = CASE outcome
    WHEN 'paid' THEN period_start + interval '2 hours 1 minute'
    WHEN 'retry' THEN period_start + interval '3 days 2 hours 1 minute'
    WHEN 'newcard' THEN period_start + interval '2 days 3 hours 1 minute' END,
  failed = CASE outcome WHEN 'paid' THEN 0 WHEN 'retry' THEN 2 WHEN 'newcard' THEN 1
    WHEN 'past_due' THEN (SELECT count(*) FROM unnest(ARRAY[0, 1, 3, 5, 7]) d
                          WHERE period_start + interval '2 hours 1 minute' + d * interval '1 day'
                                < %(end)s)
    ELSE 5 END;
CREATE INDEX ON seed_inv (sub_id, n);
ANALYZE seed_inv;

INSERT INTO customers (id, external_id, email, name, locale, timezone, credit_balance, created_at)
SELECT id, 'cus_' || id, 'c' || id || '@example.com', 'Customer ' || id, 'en', %(tz)s, 0,
       (anchor::timestamp AT TIME ZONE %(tz)s) - interval '1 day'
FROM seed_subs;

INSERT INTO cards (id, customer_id, gateway_card_id, status, masked_number, card_type, expiry,
                   holder, created_at, activated_at)
SELECT id, id, 'C' || id, 'active', '625094******0014', 'UP', '1230', 'Customer ' || id,
       (anchor::timestamp AT TIME ZONE %(tz)s) - interval '1 day',
       (anchor::timestamp AT TIME ZONE %(tz)s) - interval '1 day'
FROM seed_subs;
SELECT setval(pg_get_serial_sequence('cards', 'id'), (SELECT max(id) FROM seed_subs));

INSERT INTO cards (customer_id, gateway_card_id, status, masked_number, card_type, expiry, holder,
                   created_at, activated_at)
SELECT sub_id, 'N' || id, 'active', '625094******0022', 'UP', '1230', 'Customer ' || sub_id,
       dunning_at + interval '2 days', dunning_at + interval '2 days'
FROM seed_inv WHERE outcome = 'newcard';

INSERT INTO subscriptions (id, customer_id, plan_id, plan_version_id, card_id, status, quantity,
  timezone, anchor_date, started_at, next_period_index, next_renewal_at, current_period_start,
  current_period_end, cancel_at_period_end, canceled_at, created_at, updated_at)
SELECT s.id, s.id, p.id, v.id, s.id,
  CASE s.fate WHEN 'canceled' THEN 'canceled' WHEN 'dunning' THEN 'canceled'
              WHEN 'unpaid' THEN 'unpaid' WHEN 'past_due' THEN 'past_due' ELSE 'active' END,
  1, %(tz)s, s.anchor, s.anchor::timestamp AT TIME ZONE %(tz)s, s.invoices,
  CASE WHEN s.fate IN ('active', 'past_due') THEN l.period_end END,
  l.period_start, l.period_end, false,
  CASE s.fate WHEN 'canceled' THEN l.period_start + s.cancel_days * interval '1 day'
              WHEN 'dunning' THEN l.dunning_at + interval '14 days' END,
  (s.anchor::timestamp AT TIME ZONE %(tz)s) - interval '1 day', %(end)s
FROM seed_subs s
JOIN plans p ON p.code = s.plan
JOIN plan_versions v ON v.plan_id = p.id AND v.version = p.current_version
JOIN seed_inv l ON l.sub_id = s.id AND l.n = s.invoices - 1;

INSERT INTO invoices (id, number, customer_id, subscription_id, kind, period_index, period_start,
  period_end, currency, subtotal, credit_applied, total, amount_paid, amount_refunded, status,
  issued_at, due_at, paid_at, next_attempt_at, attempt_count, last_attempt_at, hard_declined,
  dunning_started_at, dunning_step, dunning_final_done)
SELECT id, 'INV-' || lpad(id::text, 7, '0'), sub_id, sub_id, 'renewal', n, period_start,
  period_end, currency, total, 0, total, CASE WHEN paid_at IS NOT NULL THEN total ELSE 0 END, 0,
  CASE WHEN paid_at IS NOT NULL THEN 'paid' WHEN outcome = 'dunning' THEN 'uncollectible'
       ELSE 'open' END,
  issued_at, period_start, paid_at,
  CASE WHEN outcome = 'past_due' THEN %(end)s + interval '1 day' END,
  failed + CASE WHEN paid_at IS NOT NULL THEN 1 ELSE 0 END, coalesce(paid_at, dunning_at), false,
  dunning_at, 0, outcome IN ('dunning', 'unpaid')
FROM seed_inv;

INSERT INTO invoice_lines (invoice_id, kind, description, quantity, unit_amount, amount,
                           period_start, period_end)
SELECT id, 'subscription', 'Plan', 1, price, price, period_start, period_end FROM seed_inv
UNION ALL
SELECT id, 'setup_fee', 'Setup fee', 1, setup_fee, setup_fee, NULL, NULL FROM seed_inv
WHERE n = 0 AND setup_fee IS NOT NULL;

INSERT INTO payment_attempts (invoice_id, attempt_no, mch_order_no, amount, currency,
  gateway_card_id, state, decline_kind, failure_reason, created_at, sent_at, resolved_at,
  check_count)
SELECT i.id, k + 1, 'B' || i.id || '-' || (k + 1), i.total, i.currency, 'C' || i.sub_id,
       'failed', 'soft', 'Insufficient funds',
       i.dunning_at + (ARRAY[0, 1, 3, 5, 7])[k + 1] * interval '1 day',
       i.dunning_at + (ARRAY[0, 1, 3, 5, 7])[k + 1] * interval '1 day',
       i.dunning_at + (ARRAY[0, 1, 3, 5, 7])[k + 1] * interval '1 day', 0
FROM seed_inv i CROSS JOIN LATERAL generate_series(0, i.failed - 1) AS g(k)
UNION ALL
SELECT id, failed + 1, 'B' || id || '-' || (failed + 1), total, currency,
       CASE WHEN outcome = 'newcard' THEN 'N' || id ELSE 'C' || sub_id END, 'succeeded', NULL,
       NULL, paid_at, paid_at, paid_at, 0
FROM seed_inv WHERE paid_at IS NOT NULL;

INSERT INTO refunds (invoice_id, payment_attempt_id, mch_refund_no, kind, amount, currency, state,
                     credit_note_number, created_at, resolved_at, check_count)
SELECT i.id, a.id, 'R' || i.id, i.reversal,
       CASE i.reversal WHEN 'void' THEN i.total ELSE i.total / 2 END, i.currency, 'succeeded',
       'CN-' || i.id,
       i.paid_at + CASE i.reversal WHEN 'void' THEN interval '2 hours' ELSE interval '5 days' END,
       i.paid_at + CASE i.reversal WHEN 'void' THEN interval '2 hours' ELSE interval '5 days' END,
       0
FROM seed_inv i
JOIN payment_attempts a ON a.invoice_id = i.id AND a.state = 'succeeded'
WHERE i.reversal IS NOT NULL AND i.total > 1 AND i.paid_at + interval '5 days' < %(end)s;
UPDATE invoices SET amount_refunded = r.amount FROM refunds r WHERE r.invoice_id = invoices.id;

INSERT INTO events (at, type, customer_id, subscription_id, invoice_id, data)
SELECT (anchor::timestamp AT TIME ZONE %(tz)s), 'subscription.created', id, id, NULL,
       json_build_object('plan', plan)
FROM seed_subs
UNION ALL
SELECT issued_at, 'invoice.issued', sub_id, sub_id, id,
       json_build_object('number', 'INV-' || lpad(id::text, 7, '0'), 'total', total)
FROM seed_inv
UNION ALL
SELECT a.created_at, 'payment.attempt_started', i.sub_id, i.sub_id, i.id,
       json_build_object('mch_order_no', a.mch_order_no, 'amount', a.amount)
FROM payment_attempts a JOIN seed_inv i ON i.id = a.invoice_id
UNION ALL
SELECT paid_at, 'invoice.paid', sub_id, sub_id, id, json_build_object('amount', total)
FROM seed_inv WHERE paid_at IS NOT NULL
UNION ALL
SELECT dunning_at + interval '14 days', 'invoice.uncollectible', sub_id, sub_id, NULL,
       json_build_object('invoices', json_build_array('INV-' || lpad(id::text, 7, '0')))
FROM seed_inv WHERE outcome = 'dunning'
UNION ALL
SELECT dunning_at + CASE outcome WHEN 'unpaid' THEN interval '30 days'
                                 ELSE interval '14 days' END,
       'dunning.final_action', sub_id, sub_id, NULL,
       json_build_object('action', CASE outcome WHEN 'unpaid' THEN 'mark_unpaid'
                                                ELSE 'cancel' END)
FROM seed_inv WHERE outcome IN ('dunning', 'unpaid');

SELECT setval(pg_get_serial_sequence(t, 'id'), (SELECT max(id) FROM seed_inv))
FROM (VALUES ('invoices')) AS v(t);
SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM seed_subs));
SELECT setval(pg_get_serial_sequence('subscriptions', 'id'), (SELECT max(id) FROM seed_subs));
DROP TABLE seed_inv;
DROP TABLE seed_subs;
"""


def seed(url: str, subs: list[Sub]) -> dict[str, int]:
    """Bulk-load ``subs`` and everything they imply; returns row counts per table."""
    with psycopg.connect(libpq_dsn(url)) as conn:
        conn.execute("CREATE UNLOGGED TABLE seed_subs (id bigint PRIMARY KEY, plan text, "
                     "anchor date, invoices int, fate text, cancel_days int)")
        with conn.cursor().copy("COPY seed_subs FROM STDIN") as copy:
            for s in subs:
                copy.write_row((s.id, s.plan, s.anchor, s.invoices, s.fate, s.cancel_days))
        sql = (SEED_SQL.replace("%(tz)s", f"'{TIMEZONE}'").replace("%%", "%")
               .replace("%(end)s", f"timestamptz '{END.isoformat()}'"))  # constants, not input
        for statement in sql.split(";\n"):
            if statement.strip():
                conn.execute(statement.encode())
        conn.commit()
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        counts = {}
        for table in TABLES:  # names from this module, not input
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
            counts[table] = int(row[0]) if row else 0
        return counts


def prepare(url: str) -> None:
    store = Store.open(url)
    upgrade(store.engine)
    try:
        with UnitOfWork(store) as uow:
            apply_catalog(uow, FixedClock(datetime(2024, 11, 1, tzinfo=UTC)),
                          load_catalog(REPO / "plans"))
    finally:
        store.close()


class Statements:
    """The statements a report sends, kept so they can be explained afterwards."""

    def __init__(self, store: Store) -> None:
        self.sent: list[tuple[str, Any]] = []
        event.listen(store.engine, "before_cursor_execute", self._keep)

    def _keep(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        self.sent.append((statement, parameters))


def explain(url: str, sent: list[tuple[str, Any]]) -> None:
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        for statement, params in sent:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall()
            print("\n" + statement + "\n" + "\n".join(row[0] for row in plan))


def run_reports(url: str, runs: int, do_explain: bool) -> dict[str, list[dict[str, float]]]:
    store = Store.open(url)
    results: dict[str, list[dict[str, float]]] = {}
    try:
        for name, (first, last) in RANGES.items():
            rng = report_range(first, last, TIMEZONE, END)
            for _ in range(runs):
                started = time.perf_counter()
                report = build_report(store, rng)
                total = time.perf_counter() - started
                results.setdefault(name, []).append({"total": total, **report.timings})
            if do_explain:
                watcher = Statements(store)
                build_report(store, rng)
                print(f"\n===== EXPLAIN: {name} =====")
                explain(url, watcher.sent)
                event.remove(store.engine, "before_cursor_execute", watcher._keep)
    finally:
        store.close()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Time billing's report over a million invoices.")
    p.add_argument("--invoices", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--server-url", default=DEFAULT_SERVER_URL)
    p.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE every statement")
    p.add_argument("--quiet-wait", type=float, default=60.0)
    p.add_argument("--keep-db", action="store_true")
    a = p.parse_args(argv)
    for key, value in machine_facts(a.server_url).items():
        print(f"{key:>22}: {value}")
    with postgres_database(a.server_url, a.keep_db) as url:
        prepare(url)
        started = time.perf_counter()
        subs = population(a.invoices, a.seed)
        counts = seed(url, subs)
        print(f"\nseeded in {time.perf_counter() - started:.1f} s: "
              + ", ".join(f"{n:,} {t}" for t, n in counts.items()))
        if a.quiet_wait:
            waited, busy = wait_quiet(0.3, a.quiet_wait)
            print(f"waited {waited:.0f} s for a quiet machine ({busy:.2f} cores busy)")
        results = run_reports(url, a.runs, a.explain)
    print(f"\nreport as of {END.isoformat()}, {a.runs} runs per range, median seconds:\n")
    rows = [[name, str(len(rs)), *(f"{statistics.median(r[k] for r in rs):.3f}"
                                   for k in ("total", *FIGURES))]
            for name, rs in results.items()]
    print_table(["range", "runs", "total", *FIGURES], rows)
    print("\nevery run (total s): " + "; ".join(
        f"{name} " + ", ".join(f"{r['total']:.2f}" for r in rs) for name, rs in results.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
