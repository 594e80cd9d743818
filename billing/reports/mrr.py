"""Monthly recurring revenue: what one renewal invoice is worth per month, exactly.

A renewal invoice's recurring lines (kind ``subscription``: price x quantity, before any credit
and without the setup fee) bill one period. Its *monthly amount* is that sum scaled to an average
month (``AVERAGE_MONTH_SECONDS``, 365.2425 days / 12) with exact fractions and rounded once, half
up, to a minor unit.

The scale is the plan's **nominal** interval, not the period's actual seconds. Scaling by actual
seconds would make a 19.00-a-month plan worth 20.65 in February and 18.66 in a 31-day month, and
every subscription would show an expansion or a contraction each month without anyone changing
anything. So a monthly period counts as one month whatever its days, a yearly one as twelve, a
week as 7 / 30.436875 of a month. The interval is the subscription's plan version's; when the
period's length does not fit that interval (the subscription switched to a plan with another
interval after the invoice was issued), the period's actual seconds are used instead.

This module is the definition; ``billing.reports.queries`` computes the same thing in SQL for
every invoice at once (``monthly_amount_sql``), and a test holds the two equal.

>>> monthly_amount(1900, 28 * 86400, "month", 1), monthly_amount(1900, 31 * 86400, "month", 1)
(1900, 1900)
>>> monthly_amount(49000, 365 * 86400, "year", 1)  # 490.00 a year: 40.83 a month
4083
>>> monthly_amount(1850, 7 * 86400, "week", 1)  # 18.50 a week: 18.50 x 30.436875 / 7
8044
>>> monthly_amount(1900, 30 * 86400, "year", 1)  # a monthly period left by a switch to yearly
1928
"""

from __future__ import annotations

from fractions import Fraction

from sqlalchemy import ColumnElement, SQLColumnExpression, case, literal

from billing.domain.money import round_half_up
from billing.reports.sql import half_up_div

AVERAGE_MONTH_SECONDS = 2_629_746
"""365.2425 days (the Gregorian average year) / 12, in seconds: exactly 30.436875 days."""
DAY = 86_400
_SECONDS = {"week": 7 * DAY, "day": DAY}


def period_days(seconds: int) -> int:
    """Whole local days in a period: a DST change moves its length by an hour, never a day."""
    return (seconds + DAY // 2) // DAY


def fits(unit: str, count: int, seconds: int) -> bool:
    """Whether a period of ``seconds`` can be one interval of ``count`` x ``unit``."""
    days = period_days(seconds)
    if unit == "month":
        return 28 * count <= days <= 31 * count
    if unit == "year":
        return 365 * count <= days <= 366 * count
    return days * DAY == _SECONDS.get(unit, -1) * count


def monthly_ratio(unit: str, count: int, seconds: int) -> Fraction:
    """How many months one period is worth (see the module docstring)."""
    if seconds <= 0:
        return Fraction(0)
    if fits(unit, count, seconds):
        if unit == "month":
            return Fraction(count)
        if unit == "year":
            return Fraction(12 * count)
        return Fraction(_SECONDS[unit] * count, AVERAGE_MONTH_SECONDS)
    return Fraction(seconds, AVERAGE_MONTH_SECONDS)


def monthly_amount(amount: int, seconds: int, unit: str, count: int) -> int:
    """``amount`` for one period, per average month, in minor units (one rounding step)."""
    ratio = monthly_ratio(unit, count, seconds)
    return 0 if ratio == 0 else round_half_up(Fraction(amount) / ratio)


def monthly_amount_sql(amount: ColumnElement[int], seconds: ColumnElement[int],
                       unit: SQLColumnExpression[str], count: SQLColumnExpression[int]
                       ) -> ColumnElement[int]:
    """``monthly_amount`` as one SQL expression over integer columns (exact integer arithmetic:
    ``amount / ratio`` is ``amount * den / num`` rounded half up by ``half_up_div``)."""
    days = (seconds + DAY // 2) // DAY
    avg = literal(AVERAGE_MONTH_SECONDS)
    return case(
        (seconds <= 0, literal(0)),
        ((unit == "month") & days.between(count * 28, count * 31), half_up_div(amount, count)),
        ((unit == "year") & days.between(count * 365, count * 366),
         half_up_div(amount, count * 12)),
        ((unit == "week") & (days == count * 7),
         half_up_div(amount * avg, count * _SECONDS["week"])),
        ((unit == "day") & (days == count), half_up_div(amount * avg, count * DAY)),
        else_=half_up_div(amount * avg, seconds),
    )
