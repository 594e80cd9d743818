"""Plan YAML: shipped examples validate; every mistake is reported with file, line and field."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from billing.catalog.loader import load_catalog
from billing.domain.calendar import IntervalUnit
from billing.domain.dunning import FinalAction
from billing.domain.money import Money
from billing.errors import CatalogError

POLICY = """
dunning_policies:
  - name: standard
    steps:
      - {after: 0d, email: payment_failed}
    final_action: {after: 14d, action: cancel}
"""

GOOD_PLAN = """
plans:
  - code: pro
    name: Pro
    price: "29.00"
    interval: {unit: month}
    retry_schedule: [1d, 3d]
    dunning_policy: standard
"""


def _write(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(dedent(text))
    return tmp_path


def _problems(directory: Path) -> list[str]:
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    return [str(p) for p in info.value.problems]


def test_shipped_plans_validate(plans_dir: Path) -> None:
    catalog = load_catalog(plans_dir)
    units = {p.terms.interval.unit for p in catalog.plans.values()}
    assert {IntervalUnit.MONTH, IntervalUnit.YEAR, IntervalUnit.WEEK} <= units
    assert any(p.trial.days > 0 for p in catalog.plans.values())
    assert len({p.dunning_policy for p in catalog.plans.values()}) >= 1


def test_valid_plan_becomes_a_domain_plan(tmp_path: Path) -> None:
    catalog = load_catalog(_write(tmp_path, **{"a.yaml": GOOD_PLAN, "b.yaml": POLICY}))
    plan = catalog.plans["pro"]
    assert plan.terms.price == Money(2900, "CAD")
    assert [d.days for d in plan.retry_schedule] == [1, 3]
    assert catalog.dunning_policies["standard"].final_action is FinalAction.CANCEL
    assert catalog.sources["pro"].endswith("a.yaml:3")


def test_misspelled_unit_names_file_line_field_and_choices(tmp_path: Path) -> None:
    bad = GOOD_PLAN.replace("{unit: month}", "\n      unit: mnth")
    problems = _problems(_write(tmp_path, **{"pro.yaml": bad, "p.yaml": POLICY}))
    assert problems == [
        f"{tmp_path}/pro.yaml:7: plans[0].interval.unit: "
        "must be one of day, week, month, year (got 'mnth')"
    ]


def test_every_mistake_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    bad = """
    plans:
      - code: pro
        name: Pro
        price: 29.99
        interval: {unit: month, count: 0}
        retry_schedule: [3d, 1d]
        dunning_policy: standard
        colour: red
    """
    problems = _problems(_write(tmp_path, **{"pro.yaml": bad, "p.yaml": POLICY}))
    joined = "\n".join(problems)
    assert len(problems) == 4, joined
    assert "pro.yaml:5: plans[0].price: write amounts as integer minor units" in joined
    assert "pro.yaml:6: plans[0].interval.count: must be at least 1 (got 0)" in joined
    assert "pro.yaml:7: plans[0].retry_schedule: must be strictly increasing" in joined
    assert "pro.yaml:9: plans[0].colour: unknown field" in joined


@pytest.mark.parametrize("price,message", [
    ('"29.999"', "more than 2 decimal places"),
    ("29.5", "integer minor units or a quoted decimal string"),
    ('"abc"', "not a decimal amount"),
    ("-100", "must be at least 0"),
])
def test_bad_prices_are_refused(tmp_path: Path, price: str, message: str) -> None:
    bad = GOOD_PLAN.replace('"29.00"', price)
    problems = _problems(_write(tmp_path, **{"pro.yaml": bad, "p.yaml": POLICY}))
    assert len(problems) == 1 and message in problems[0] and ":5: plans[0].price:" in problems[0]


def test_duplicate_plan_codes_across_files_name_both_places(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, **{"a.yaml": GOOD_PLAN, "b.yaml": GOOD_PLAN,
                                             "p.yaml": POLICY}))
    assert problems == [f"{tmp_path}/b.yaml:3: plans[0].code: duplicate plan code 'pro' "
                        f"(first defined at {tmp_path}/a.yaml:3)"]


def test_unknown_dunning_policy_is_an_error(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, **{"a.yaml": GOOD_PLAN.replace(
        "dunning_policy: standard", "dunning_policy: strict"), "p.yaml": POLICY}))
    assert problems == [f"{tmp_path}/a.yaml:8: plans[0].dunning_policy: unknown dunning policy "
                        "'strict' (defined: standard)"]


def test_unsorted_dunning_steps_are_an_error(tmp_path: Path) -> None:
    policy = POLICY.replace("- {after: 0d, email: payment_failed}",
                            "- {after: 5d, email: payment_failed}\n      "
                            "- {after: 1d, email: reminder}")
    problems = _problems(_write(tmp_path, **{"a.yaml": GOOD_PLAN, "p.yaml": policy}))
    assert len(problems) == 1 and "dunning_policies[0].steps: steps must be in increasing" in (
        problems[0])


def test_duplicate_yaml_keys_are_reported_not_silently_merged(tmp_path: Path) -> None:
    dup = GOOD_PLAN.replace('price: "29.00"', 'price: "29.00"\n    price: "9.00"')
    problems = _problems(_write(tmp_path, **{"a.yaml": dup, "p.yaml": POLICY}))
    assert problems == [f"{tmp_path}/a.yaml:6: plans[0].price: duplicate key"]


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, **{"a.yaml": "plans:\n  - code: [unclosed\n",
                                             "p.yaml": POLICY}))
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path}/a.yaml:3: invalid YAML")


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    assert _problems(tmp_path) == [f"{tmp_path}: no *.yaml plan files here"]


def test_currency_other_than_cad_is_refused(tmp_path: Path) -> None:
    bad = GOOD_PLAN.replace('price: "29.00"', 'currency: USD\n    price: "29.00"')
    problems = _problems(_write(tmp_path, **{"a.yaml": bad, "p.yaml": POLICY}))
    assert problems == [f"{tmp_path}/a.yaml:5: plans[0].currency: must be one of CAD (got 'USD')"]


def test_a_price_or_setup_fee_the_gateway_cannot_charge_is_refused(tmp_path: Path) -> None:
    big = GOOD_PLAN.replace('price: "29.00"', 'price: "21474836.48"\n    setup_fee: 2147483648')
    problems = _problems(_write(tmp_path, **{"a.yaml": big, "b.yaml": POLICY}))
    limit = "more than the 21474836.47 CAD the gateway can charge in one payment"
    assert problems == [f"{tmp_path}/a.yaml:5: plans[0].price: 21474836.48 CAD is {limit}",
                        f"{tmp_path}/a.yaml:6: plans[0].setup_fee: 21474836.48 CAD is {limit}"]


def test_a_price_at_the_gateway_limit_is_accepted(tmp_path: Path) -> None:
    top = GOOD_PLAN.replace('price: "29.00"', "price: 2147483647")
    catalog = load_catalog(_write(tmp_path, **{"a.yaml": top, "b.yaml": POLICY}))
    assert catalog.plans["pro"].terms.price == Money(2147483647, "CAD")
