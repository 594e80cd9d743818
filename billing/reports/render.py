"""A report as JSON, CSV or one HTML page; the three carry the same figures.

JSON is one object with stable keys: ``range``, ``currencies``, then one key per figure, each
keyed by currency (``invoices.CAD.paid.amount``). Amounts are integer minor units of that
currency, as everywhere in the engine; ratios are exact decimal strings. CSV is the same object
flattened into one long table, ``figure,currency,key,value`` (``invoices,CAD,paid.amount,22790``),
so a spreadsheet filter on ``figure`` gives one table, and ``to_csv`` is ``flatten(to_json)`` by
construction. HTML formats every amount with ``Money.format()`` and draws three inline SVG charts
(``billing.reports.charts``); it is a Jinja template shipped in the package, rendered with
autoescape and ``StrictUndefined``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from billing.domain.money import Money, round_half_up
from billing.reports import charts
from billing.reports.figures import (
    AGING_BUCKETS,
    DUNNING_STAGES,
    INVOICE_OUTCOMES,
    MOVEMENTS,
    Cash,
    Dunning,
    MrrMonth,
    Report,
    Tally,
)

FORMATS = ("html", "csv", "json")
CSV_COLUMNS = ("figure", "currency", "key", "value")
TEMPLATE_VERSION = "2026.1"
"""Bump when the wording or layout of the report page or email changes."""


def ratio_text(value: Fraction | None, places: int = 4) -> str | None:
    """An exact ratio as a decimal string rounded half up (``2/3`` -> ``"0.6667"``)."""
    if value is None:
        return None
    units = round_half_up(value * 10**places)  # the engine's one rounding rule
    return f"{Decimal(units).scaleb(-places):.{places}f}"


def _tally(t: Tally) -> dict[str, int]:
    return {"count": t.count, "amount": t.amount}


def _month(m: MrrMonth) -> dict[str, int]:
    return {"start": m.start, **{name: m.movement(name) for name in MOVEMENTS}, "end": m.end}


def _cash(c: Cash) -> dict[str, int]:
    return {"collected": c.collected, "refunded": c.refunded, "net": c.net}


def _dunning(d: Dunning) -> dict[str, Any]:
    return {"entered": _tally(d.entered),
            **{stage: _tally(d.stages.get(stage, Tally())) for stage in DUNNING_STAGES},
            "recovered": _tally(d.recovered), "recovery_rate": ratio_text(d.recovery_rate)}


def to_json(report: Report) -> dict[str, Any]:
    """The report as one JSON-ready object (see the module docstring for its shape)."""
    r = report.range
    cur = report.currencies
    return {
        "range": {"from": r.first.isoformat(), "to": r.last.isoformat(), "timezone": r.timezone,
                  "start": r.start.isoformat(), "end": r.end.isoformat(),
                  "generated_at": r.generated_at.isoformat()},
        "currencies": list(cur),
        "invoices": {c: {o: _tally(report.invoices.get(c, {}).get(o, Tally()))
                         for o in INVOICE_OUTCOMES} for c in cur},
        "cash": {c: _cash(report.cash.get(c, Cash())) for c in cur},
        "mrr": {c: {"start": report.mrr_at_start(c), "end": report.mrr_at_end(c),
                    "months": {m.month: _month(m) for m in report.mrr.get(c, [])}}
                for c in cur},
        "subscriptions": {c: {p.code: {"name": p.name, "active": p.active,
                                       "trialing": p.trialing, "mrr": p.mrr}
                              for p in report.plans if p.currency == c} for c in cur},
        "dunning": {c: _dunning(report.dunning.get(c, Dunning(Tally(), {}))) for c in cur},
        "aging": {c: {b: _tally(report.aging.get(c, {}).get(b, Tally()))
                      for b in AGING_BUCKETS} for c in cur},
    }


def json_text(report: Report) -> str:
    return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, f"{path}.{key}" if path else str(key))
    else:
        yield path, value


def flatten(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """JSON -> CSV rows: ``range`` and ``currencies`` have no currency column; every figure's
    second level is its currency."""
    rows: list[tuple[str, str, str, str]] = []
    for figure, value in data.items():
        if figure == "range":
            rows += [(figure, "", key, _cell(v)) for key, v in _leaves(value, "")]
        elif figure == "currencies":
            rows += [(figure, c, "", "") for c in value]
        else:
            rows += [(figure, currency, key, _cell(v)) for currency, inner in value.items()
                     for key, v in _leaves(inner, "")]
    return rows


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def csv_text(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(flatten(to_json(report)))
    return out.getvalue()


# --- HTML -----------------------------------------------------------------------------------------


@cache
def environment() -> Environment:
    """Templates shipped in ``billing/reports/templates``: strict, and escaped for HTML."""
    return Environment(loader=PackageLoader("billing.reports", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True,
                                                    disabled_extensions=("txt", "txt.j2")),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                       keep_trailing_newline=True)


def money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def percent(value: Fraction | None) -> str:
    """``0.5`` -> ``50.0 %``; no rate (nothing entered dunning) -> an en dash."""
    text = ratio_text(value * 100 if value is not None else None, 1)
    return "–" if text is None else f"{text} %"


def html_text(report: Report, *, merchant: str) -> str:
    """The report page: one self-contained HTML document (inline CSS and SVG, no scripts)."""
    template = environment().get_template("report.html.j2")
    return template.render(report=report, data=to_json(report), merchant=merchant,
                           charts=charts.for_report(report), money=money, percent=percent,
                           outcomes=INVOICE_OUTCOMES, stages=DUNNING_STAGES,
                           buckets=AGING_BUCKETS, movements=MOVEMENTS,
                           version=TEMPLATE_VERSION)


def render(report: Report, fmt: str, *, merchant: str) -> str:
    """The report in ``fmt`` (one of ``FORMATS``)."""
    if fmt == "json":
        return json_text(report)
    if fmt == "csv":
        return csv_text(report)
    return html_text(report, merchant=merchant)
