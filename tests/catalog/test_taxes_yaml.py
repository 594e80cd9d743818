"""The catalog's ``taxes:``: exact percents per province, every mistake with file and line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from textwrap import dedent

import pytest

from billing.catalog.loader import load_catalog
from billing.errors import CatalogError

GOOD = """
taxes:
  - name: GST
    rate: "5"
    provinces: [AB, QC]
  - name: QST
    rate: "9.975"
    provinces: [QC]
"""


def _write(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(dedent(text))
    return tmp_path


def _problems(directory: Path) -> list[str]:
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    return [str(p).removeprefix(f"{directory}/") for p in info.value.problems]


def test_taxes_become_exact_rates_per_province_in_file_order(tmp_path: Path) -> None:
    taxes = load_catalog(_write(tmp_path, **{"t.yaml": GOOD})).taxes
    assert {p: [(r.name, r.percent) for r in rates] for p, rates in taxes.items()} == {
        "AB": [("GST", Decimal("5"))],
        "QC": [("GST", Decimal("5")), ("QST", Decimal("9.975"))]}


def test_a_catalog_without_taxes_has_none(plans_dir: Path) -> None:
    assert load_catalog(plans_dir).taxes == {}


def test_every_tax_mistake_names_file_line_and_field(tmp_path: Path) -> None:
    bad = """
    taxes:
      - name: GST
        rate: 5.5
        provinces: [QC, Quebec, XX]
      - name: QST
        rate: "9.97501"
        provinces: [QC, QC]
      - name: HST
        rate: "13"
        provinces: [ON]
        registration: 123
    """
    assert _problems(_write(tmp_path, **{"t.yaml": bad})) == [
        "t.yaml:4: taxes[0].rate: write a rate as a quoted decimal string like \"9.975\" "
        "(got the number 5.5)",
        "t.yaml:5: taxes[0].provinces[1]: must be a two-letter province code in capitals like "
        "QC (got 'Quebec')",
        "t.yaml:5: taxes[0].provinces[2]: province must be one of AB, BC, MB, NB, NL, NS, NT, "
        "NU, ON, PE, QC, SK, YT (got 'XX')",
        "t.yaml:7: taxes[1].rate: '9.97501' has more than 4 decimal places",
        "t.yaml:8: taxes[1].provinces: lists QC more than once",
        "t.yaml:11: taxes[2].provinces[0]: got true: YAML reads an unquoted ON as true; "
        "write \"ON\" in quotes",
        "t.yaml:12: taxes[2].registration: unknown field; see docs/plans.md for the fields a "
        "plan takes",
    ]


def test_a_tax_charged_twice_in_a_province_points_at_both(tmp_path: Path) -> None:
    again = """
    taxes:
      - name: gst
        rate: "6"
        provinces: [SK, QC]
    """
    assert _problems(_write(tmp_path, **{"a.yaml": GOOD, "b.yaml": again})) == [
        "b.yaml:5: taxes[0].provinces: gst is already charged in QC (first defined at "
        f"{tmp_path}/a.yaml:3)"]
