"""``billing subscriptions`` at its edges: huge numbers, backdated starts, imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Run


@pytest.fixture
def shop_run(run_db: Run, plans_dir: Path) -> Run:
    """The CLI on a test database with the example plans and customer cus_1 (no gateway)."""
    assert run_db("plans", "apply", str(plans_dir)).code == 0
    assert run_db("customers", "add", "cus_1", "--email", "a@example.com", "--name", "A").code == 0
    return run_db


@pytest.mark.parametrize("args", [
    ["create", "cus_1", "starter-monthly", "--quantity", "99999999999"],
    ["create", "cus_1", "starter-monthly", "--quantity", "99999999999999999999999"],
    ["create", "cus_1", "starter-monthly", "--trial-days", "99999999999999999999999"],
    ["create", "cus_1", "pro-monthly", "--quantity", "1000000"],
    ["show", "99999999999999999999999"],
    ["cancel", "0"],
])
def test_huge_numbers_are_a_user_error_not_an_overflow(shop_run: Run, args: list[str]) -> None:
    result = shop_run("subscriptions", *args)
    assert result.code == 2, result
    assert "Traceback" not in result.err and "Overflow" not in result.err
    assert "internal error" not in result.err
    assert shop_run("subscriptions", "list", "--json").json() == []


def test_the_gateway_limit_is_named_when_price_times_quantity_exceeds_it(shop_run: Run) -> None:
    result = shop_run("subscriptions", "create", "cus_1", "pro-monthly", "--quantity", "500000")
    assert result.code == 2
    assert "24500025.00 CAD, more than the 21474836.47 CAD" in result.err.replace("\n", "")


@pytest.mark.parametrize("quantity", ["99999999999", "99999999999999999999999"])
def test_change_plan_to_a_huge_quantity_is_refused_and_changes_nothing(
    shop_run: Run, quantity: str
) -> None:
    created = shop_run("subscriptions", "create", "cus_1", "starter-monthly", "--trial-days", "0",
                       "--json").json()
    result = shop_run("subscriptions", "change-plan", str(created["id"]), "--quantity", quantity)
    assert result.code == 2 and "Traceback" not in result.err
    assert "internal error" not in result.err
    shown = shop_run("subscriptions", "show", str(created["id"]), "--json").json()
    assert shown["quantity"] == 1 and len(shown["invoices"]) == 1
