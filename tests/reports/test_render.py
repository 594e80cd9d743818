"""The report as a merchant sees it (one HTML page with three inline SVG charts) and as scripts
read it (JSON, CSV): the same figures in all three."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any

import pytest

from billing.reports import build_report, report_range
from billing.reports.render import CSV_COLUMNS, csv_text, html_text, json_text, render, to_json
from billing.store.engine import Store
from tests.reports.conftest import February

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Checker(HTMLParser):
    """Well-formedness as far as a browser cares: every element closed, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:]}")
        else:
            self.open.pop()


def check_html(page: str) -> None:
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert checker.doctype and checker.errors == [] and checker.open == []


def svgs(page: str) -> dict[str, ET.Element]:
    """Every inline SVG, parsed as the XML it must be, by id."""
    found = {}
    for chunk in page.split("<svg ")[1:]:
        element = ET.fromstring("<svg " + chunk[:chunk.index("</svg>") + len("</svg>")])
        found[element.attrib["id"]] = element
    return found


@pytest.fixture
def page(february: February) -> str:
    return html_text(february.report, merchant="Bean & Leaf <Coffee>")


def test_the_page_is_well_formed_html_with_the_three_charts(page: str) -> None:
    check_html(page)
    charts = svgs(page)
    assert set(charts) == {"chart-mrr-CAD", "chart-collection-CAD", "chart-dunning-CAD"}
    ns = "{http://www.w3.org/2000/svg}"
    for chart in charts.values():
        assert chart.attrib["role"] == "img" and chart.find(f"{ns}title") is not None
    mrr = charts["chart-mrr-CAD"]
    assert len(mrr.findall(f"{ns}circle")) == 2  # the start and the end of February
    assert "146.83 CAD" in mrr.find(f"{ns}desc").text  # type: ignore[union-attr,operator]
    bars = charts["chart-collection-CAD"].findall(f"{ns}rect")
    assert len(bars) == 2 * 5  # a track and a bar per outcome
    funnel = charts["chart-dunning-CAD"].find(f"{ns}desc").text or ""  # type: ignore[union-attr]
    assert "Entered dunning: 4 invoices, 76.00 CAD" in funnel
    assert "Recovered by new card: 1 invoices, 19.00 CAD" in funnel


def test_the_page_shows_the_key_figures_formatted(page: str) -> None:
    for text in ('id="kpi-mrr-CAD">243.44 CAD<', 'id="kpi-cash-CAD">203.90 CAD<',
                 'id="kpi-issued-CAD">13<', 'id="kpi-recovery-CAD">50.0 %<',
                 "<td>Total owed</td><td>2</td><td>509.00 CAD</td>",
                 "<td>Range</td><td>146.83 CAD</td><td>76.00 CAD</td><td>30.00 CAD</td>"
                 "<td>80.44 CAD</td><td>-30.00 CAD</td><td>-59.83 CAD</td><td>243.44 CAD</td>"):
        assert text in page


def test_names_are_escaped_not_markup(page: str) -> None:
    assert "Bean &amp; Leaf &lt;Coffee&gt;" in page and "<Coffee>" not in page


def _lookup(data: dict[str, Any], figure: str, currency: str, key: str) -> Any:
    value: Any = data[figure] if figure == "range" else data[figure][currency]
    for part in key.split(".") if key else []:
        value = value[part]
    return value


def test_csv_and_json_carry_the_same_figures(february: February) -> None:
    data = json.loads(json_text(february.report))
    rows = list(csv.reader(io.StringIO(csv_text(february.report))))
    assert tuple(rows[0]) == CSV_COLUMNS
    for figure, currency, key, value in rows[1:]:
        if figure == "currencies":
            assert currency in data["currencies"]
            continue
        expected = _lookup(data, figure, currency, key)
        assert value == ("" if expected is None else str(expected)), (figure, currency, key)
    leaves = sum(1 for r in rows[1:] if r[0] == "invoices")
    assert leaves == 5 * 2  # five outcomes, count and amount


def test_json_has_stable_keys_and_minor_unit_amounts(february: February) -> None:
    data = to_json(february.report)
    assert list(data) == ["range", "currencies", "invoices", "cash", "mrr", "subscriptions",
                          "dunning", "aging"]
    assert data["range"] == {"from": "2026-02-01", "to": "2026-02-28",
                             "timezone": "America/Toronto", "start": "2026-02-01T05:00:00+00:00",
                             "end": "2026-03-01T05:00:00+00:00",
                             "generated_at": "2026-03-03T12:00:00+00:00"}
    assert data["cash"]["CAD"] == {"collected": 22790, "refunded": 2400, "net": 20390}
    assert data["dunning"]["CAD"]["recovery_rate"] == "0.5000"
    assert data["mrr"]["CAD"]["months"]["2026-02"]["churn"] == 5983
    assert render(february.report, "json", merchant="x") == json_text(february.report)


def test_an_empty_shop_gets_a_page_that_says_so(store: Store) -> None:
    rng = report_range(date(2026, 2, 1), date(2026, 2, 28), "America/Toronto",
                       datetime(2026, 3, 3, tzinfo=UTC))
    page = html_text(build_report(store, rng), merchant="Shop")
    check_html(page)
    assert "Nothing to report: no plans are stored yet" in page and "<svg" not in page
    assert json.loads(json_text(build_report(store, rng)))["currencies"] == []
