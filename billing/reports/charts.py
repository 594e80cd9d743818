"""The report's three charts as inline SVG, drawn by hand: MRR over time, collection outcomes,
and the dunning funnel.

Hand-made rather than plotted with a library: three simple shapes (a line, horizontal bars, a
centred funnel) need a few dozen lines each, the output is deterministic (a test can compare it),
it has no fonts, scripts or external references, and the package gains no heavy dependency. All
text goes through ``markupsafe.escape``; numbers are formatted here (amounts with ``Money``), so
the SVG never computes money. Each chart is an ``<svg role="img">`` with a ``<title>`` and a
``<desc>`` that states its figures in words, for screen readers and mail clients without SVG.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

from billing.domain.money import Money, exponent
from billing.reports.figures import (
    DUNNING_STAGES,
    INVOICE_OUTCOMES,
    Dunning,
    Report,
    Tally,
)
from billing.reports.period import MONTH_NAMES

WIDTH = 960
"""The MRR chart spans the page; the bar charts sit in half-width cards (``BAR_WIDTH``). Both
scale to their box, so each is drawn for the size it is shown at and its text stays legible."""
BAR_WIDTH = 480
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
MRR_COLOR = "#0f766e"
OUTCOME_COLORS = {"issued": "#475569", "paid": "#15803d", "failed": "#b91c1c",
                  "refunded": "#b45309", "voided": "#7c3aed"}
STAGE_COLORS = {"entered": "#334155", "recovered_by_retry": "#15803d",
                "recovered_by_new_card": "#16a34a", "recovered_by_pay_now": "#4ade80",
                "still_open": "#d97706", "written_off": "#b91c1c"}
LABELS = {"issued": "Issued", "paid": "Paid", "failed": "Failed", "refunded": "Refunded",
          "voided": "Voided", "entered": "Entered dunning",
          "recovered_by_retry": "Recovered by retry",
          "recovered_by_new_card": "Recovered by new card",
          "recovered_by_pay_now": "Recovered by pay now", "still_open": "Still open",
          "written_off": "Written off"}


def _svg(chart_id: str, size: tuple[int, int], title: str, desc: str, body: list[str]
         ) -> Markup:
    width, height = size
    ident = escape(chart_id)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" id="{ident}" class="chart" role="img" '
            f'viewBox="0 0 {width} {height}" width="100%" '
            f'aria-labelledby="{ident}-title {ident}-desc" style="{FONT}">'
            f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
            f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>')
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every piece is escaped


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 12,
          color: str = INK, weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{color}" font-weight="{weight}">{escape(text)}</text>')


def _rect(x: float, y: float, w: float, h: float, color: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" ' \
           f'rx="3" fill="{color}"/>'


def nice_scale(top: int) -> tuple[int, int]:
    """An axis maximum >= ``top`` and a round step dividing it into at most 5 parts.

    >>> nice_scale(24344), nice_scale(0), nice_scale(100)
    ((25000, 5000), (100, 20), (100, 20))
    """
    top = max(top, 100)
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if step * 5 >= top:
                return step * -(-top // step), step
        magnitude *= 10


def axis_label(amount: int, currency: str) -> str:
    """Major units without trailing zeros, for axis ticks: ``5000`` CAD -> ``50``."""
    value = Decimal(amount).scaleb(-exponent(currency))
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,}"


def _month_label(month: str) -> str:
    if month == "start":
        return "start"
    year, num = month.split("-")
    return f"{MONTH_NAMES[int(num) - 1][:3]} {year}"


@dataclass(frozen=True)
class _Plot:
    left: int = 70
    right: int = 24
    top: int = 40
    bottom: int = 40

    def width(self) -> int:
        return WIDTH - self.left - self.right


def mrr_chart(report: Report, currency: str) -> Markup:
    """MRR at the start of the range and at the end of each month, as a line."""
    months = report.mrr.get(currency, [])
    labels = ["start", *(m.month for m in months)]
    values = [report.mrr_at_start(currency), *(m.end for m in months)]
    height, plot = 300, _Plot()
    top, step = nice_scale(max(values))
    inner_h = height - plot.top - plot.bottom
    xs = [plot.left + (plot.width() * i / max(len(values) - 1, 1)) for i in range(len(values))]
    ys = [plot.top + inner_h * (1 - v / top) for v in values]
    body = [_text(plot.left, 22, f"MRR ({currency})", size=14, weight="bold")]
    for tick in range(0, top + 1, step):
        y = plot.top + inner_h * (1 - tick / top)
        body.append(f'<line x1="{plot.left}" y1="{y:.1f}" x2="{WIDTH - plot.right}" '
                    f'y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(plot.left - 8, y + 4, axis_label(tick, currency), anchor="end",
                          size=11, color=MUTED))
    area = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    base = plot.top + inner_h
    body.append(f'<polygon points="{xs[0]:.1f},{base:.1f} {area} {xs[-1]:.1f},{base:.1f}" '
                f'fill="{MRR_COLOR}" fill-opacity="0.12"/>')
    body.append(f'<polyline points="{area}" fill="none" stroke="{MRR_COLOR}" '
                f'stroke-width="2.5"/>')
    every = max(1, len(values) // 12)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{MRR_COLOR}"/>')
        if i % every == 0 or i == len(values) - 1:
            anchor = "start" if i == 0 else "end" if i == len(values) - 1 else "middle"
            body.append(_text(x, height - 14, _month_label(labels[i]), anchor=anchor, size=11,
                              color=MUTED))
    body.append(_text(xs[-1], ys[-1] - 10, Money(values[-1], currency).format(), anchor="end",
                      weight="bold"))
    desc = ", ".join(f"{_month_label(label)}: {Money(v, currency).format()}"
                     for label, v in zip(labels, values, strict=True))
    return _svg(f"chart-mrr-{currency}", (WIDTH, height), f"MRR over time ({currency})",
                f"MRR at each point: {desc}.", body)


def _bars(chart_id: str, title: str, rows: list[tuple[str, Tally, str]], currency: str,
          *, centred: bool, scale_of: str) -> Markup:
    """Horizontal bars, one per row (label, tally, colour), scaled by count or amount."""
    row_h, label_w, top = 30, 150, 36
    height = top + row_h * len(rows) + 8
    width = BAR_WIDTH - label_w - 125
    biggest = max([getattr(t, scale_of) for _, t, _ in rows] + [1])
    body = [_text(0, 22, title, size=14, weight="bold")]
    for i, (label, tally, color) in enumerate(rows):
        y = top + i * row_h
        w = width * getattr(tally, scale_of) / biggest
        x = label_w + (width - w) / 2 if centred else label_w
        body.append(_text(label_w - 8, y + 16, label, anchor="end", size=12))
        body.append(_rect(label_w, y + 2, width, row_h - 8, "#f3f4f6") if not centred else "")
        body.append(_rect(x, y + 2, w, row_h - 8, color))
        body.append(_text(label_w + width + 8, y + 16,
                          f"{tally.count} · {Money(tally.amount, currency).format()}", size=12,
                          color=MUTED))
    desc = "; ".join(f"{label}: {t.count} invoices, {Money(t.amount, currency).format()}"
                     for label, t, _ in rows)
    return _svg(chart_id, (BAR_WIDTH, height), title, desc + ".", body)


def collection_chart(report: Report, currency: str) -> Markup:
    """Invoices issued, paid, failed, refunded and voided in the range, by amount."""
    tallies = report.invoices.get(currency, {})
    rows = [(LABELS[o], tallies.get(o, Tally()), OUTCOME_COLORS[o]) for o in INVOICE_OUTCOMES]
    return _bars(f"chart-collection-{currency}", f"Collection outcomes ({currency})", rows,
                 currency, centred=False, scale_of="amount")


def dunning_chart(report: Report, currency: str) -> Markup:
    """Invoices that entered dunning, and where they were at the end, as a centred funnel."""
    funnel = report.dunning.get(currency, Dunning(Tally(), {}))
    rows = [(LABELS["entered"], funnel.entered, STAGE_COLORS["entered"])]
    rows += [(LABELS[s], funnel.stages.get(s, Tally()), STAGE_COLORS[s]) for s in DUNNING_STAGES]
    return _bars(f"chart-dunning-{currency}", f"Dunning funnel ({currency})", rows, currency,
                 centred=True, scale_of="count")


def for_report(report: Report) -> dict[str, dict[str, Markup]]:
    """currency -> chart name (``mrr``, ``collection``, ``dunning``) -> inline SVG."""
    return {c: {"mrr": mrr_chart(report, c), "collection": collection_chart(report, c),
                "dunning": dunning_chart(report, c)} for c in report.currencies}
