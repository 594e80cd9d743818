"""The SQL that differs between SQLite and PostgreSQL, in one place, plus small shared pieces.

Reports compare stored instants with bound instants, which both backends do alike (SQLite holds
UTC as sortable text). Only *arithmetic* on instants differs: the length of a period in seconds
is ``EXTRACT(EPOCH FROM ...)`` on PostgreSQL and ``strftime('%s', ...)`` on SQLite.
``epoch_seconds`` compiles to the right one for the connection it runs on, so the queries in
``billing.reports.queries`` are written once. Every other date computation (month boundaries,
aging cut-offs) is done in Python on the few instants a report needs and bound as parameters.

Expanding each invoice into the points its period holds also differs: PostgreSQL generates
exactly those (``generate_series`` in a lateral join), SQLite, which has no ``generate_series``,
compares every invoice with every point (``covered_points``).

Integer division is ``//`` on integer expressions, which SQLAlchemy renders as ``/`` on both
backends, where it truncates: amounts are never negative, so it is the floor the exact rounding
in ``billing.reports.mrr`` needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    SQLColumnExpression,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from billing.reports.period import ReportRange
from billing.store.types import UTCDateTime

AnySelect = Select[*tuple[Any, ...]]
Col = SQLColumnExpression[Any]
"""A column or expression, from a mapped class, an alias or a subquery."""


class EpochSeconds(FunctionElement[int]):
    """Whole seconds since 1970 of an instant column, on either backend."""

    type = BigInteger()
    name = "epoch_seconds"
    inherit_cache = True


@compiles(EpochSeconds, "postgresql")
def _epoch_postgresql(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(arg, **kw)}) AS BIGINT)"


@compiles(EpochSeconds, "sqlite")
def _epoch_sqlite(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses
    return f"CAST(strftime('%s', {compiler.process(arg, **kw)}) AS INTEGER)"


def epoch_seconds(instant: SQLColumnExpression[datetime]) -> ColumnElement[int]:
    return EpochSeconds(instant)


def instant(value: datetime) -> ColumnElement[datetime]:
    """A bound instant, stored the way the columns it is compared with are (UTC)."""
    return literal(value, UTCDateTime())


def points_table(instants: Sequence[datetime], name: str = "points") -> Subquery:
    """A small table ``(idx, at)`` of the instants a query measures at, in order.

    Written as ``SELECT .. UNION ALL SELECT ..`` because SQLite cannot name the columns of a
    ``VALUES`` list in ``FROM``; a report has at most a few dozen points.
    """
    rows = [select(literal(i, Integer()).label("idx"), instant(at).label("at"))
            for i, at in enumerate(instants)]
    if len(rows) == 1:
        return rows[0].subquery(name)
    return union_all(*rows).subquery(name)


def covered_points(source: FromClause, first: ColumnElement[int], last: ColumnElement[int],
                   instants: Sequence[datetime], dialect: str) -> Subquery:
    """``source``'s rows, each repeated for every point from index ``first`` to ``last``,
    with that index as the extra column ``idx``.

    PostgreSQL takes the common case, a period holding exactly one point (a month), as it is,
    and generates the points of longer periods (a year) with ``generate_series``: given a table
    of points to join, its planner joined it first and compared every invoice with every point
    (25 million comparisons for a two-year report; bench/README.md). SQLite has no
    ``generate_series`` and joins a table of points.
    """
    columns = list(source.c)
    if dialect == "postgresql":
        covered = (func.generate_series(first, last).table_valued("idx")
                   .render_derived(name="covered").lateral())
        one = select(*columns, first.label("idx")).where(first == last)
        many = (select(*columns, covered.c.idx).select_from(source.join(covered, true()))
                .where(first < last))
        return union_all(one, many).subquery("covered_points")
    points = points_table(instants)
    return (select(*columns, points.c.idx)
            .select_from(source.join(points, points.c.idx.between(first, last)))
            .subquery("covered_points"))


def point_instant(idx: SQLColumnExpression[int], instants: Sequence[datetime]
                  ) -> ColumnElement[datetime]:
    """The instant of point ``idx``, as a CASE over the report's few points."""
    return case(*((idx == i, instant(at)) for i, at in enumerate(instants)))


def half_up_div(numerator: ColumnElement[int], denominator: SQLColumnExpression[int]
                ) -> ColumnElement[int]:
    """``numerator / denominator`` rounded half up, exactly, for non-negative integers:
    ``floor((2n + d) / 2d)``, the same rule as ``billing.domain.money.round_half_up``."""
    return (numerator * 2 + denominator) // (denominator * 2)


def within(column: Col, rng: ReportRange) -> ColumnElement[bool]:
    """``start <= column < end``: a report's range is half-open."""
    return and_(column >= rng.start, column < rng.end)


def sum_of(value: Col) -> ColumnElement[int]:
    """``SUM`` as an integer, 0 over no rows (PostgreSQL sums BIGINT as NUMERIC)."""
    return cast(func.coalesce(func.sum(value), 0), BigInteger)


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return sum_of(case((condition, 1), else_=0))


def amount_if(condition: ColumnElement[bool], amount: Col) -> ColumnElement[int]:
    return sum_of(case((condition, amount), else_=0))
