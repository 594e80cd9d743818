"""Making a report: every figure from one consistent read of the database, each one timed.

All queries run in one transaction, so the figures agree with each other even while the engine
keeps billing: on PostgreSQL a read-only ``REPEATABLE READ`` snapshot, which blocks nobody; on
SQLite the engine's ``BEGIN IMMEDIATE`` transaction, which holds the write lock for the few
hundred milliseconds a SQLite-sized report takes.

PostgreSQL's JIT is off for that transaction: the correlated look-ups into the audit trail make
the planner's cost estimates large, which switches JIT on, and compiling took 1.2 s of the
1.3 s the MRR query needed on 50,000 invoices (40 ms to run). See bench/README.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from billing.reports import mrr, queries
from billing.reports.figures import Report
from billing.reports.period import ReportRange
from billing.store.engine import Store

T = TypeVar("T")

WORK_MEM = "64MB"
"""Sort and hash memory for the report's transaction: its MRR query sorts one row per
subscription and month (870,000 for two years of a million invoices), which spilled to disk
three times under the server's default 4 MB."""

FIGURES = ("invoices", "cash", "mrr", "subscriptions", "dunning", "aging")
"""The figures, in the order they are computed and timed (``Report.timings`` keys)."""


def _connect(store: Store) -> Connection:
    conn = store.engine.connect()
    if store.dialect == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ",
                                      postgresql_readonly=True)
    return conn


def build_report(store: Store, rng: ReportRange) -> Report:
    """Compute every figure of ``rng`` (see ``billing.reports.queries`` for the definitions)."""
    timings: dict[str, float] = {}

    def timed(name: str, query: Callable[[Connection, ReportRange], T], conn: Connection) -> T:
        started = time.perf_counter()
        result = query(conn, rng)
        timings[name] = time.perf_counter() - started
        return result

    with _connect(store) as conn, conn.begin():
        if store.dialect == "postgresql":
            conn.exec_driver_sql("SET LOCAL jit = off")
            conn.exec_driver_sql(f"SET LOCAL work_mem = '{WORK_MEM}'")
        invoices = timed("invoices", queries.invoice_outcomes, conn)
        cash = timed("cash", queries.cash, conn)
        months = timed("mrr", mrr.mrr_months, conn)
        plans = timed("subscriptions", mrr.plan_lines, conn)
        dunning = timed("dunning", queries.dunning_funnel, conn)
        aging = timed("aging", queries.aging, conn)
        known = queries.currencies(conn)
    seen: set[Any] = set(invoices) | set(cash) | set(months) | set(dunning) | set(aging)
    return Report(rng, tuple(sorted(known | seen | {p.currency for p in plans})), invoices,
                  cash, months, plans, dunning, aging, timings)
