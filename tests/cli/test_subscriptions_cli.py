"""``billing subscriptions`` at its edges: huge numbers, backdated starts, imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import SETUP_AT, Run


@pytest.fixture
def shop_run(run_db: Run, plans_dir: Path) -> Run:
    """The CLI on a test database with the example plans and customer cus_1 (no gateway), set
    up before any instant a test acts at (a write may not go back in time)."""
    assert run_db("--now", SETUP_AT, "plans", "apply", str(plans_dir)).code == 0
    assert run_db("--now", SETUP_AT, "customers", "add", "cus_1", "--email", "a@example.com",
                  "--name", "A").code == 0
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


NOW = "2026-01-15T12:00:00Z"


def test_a_backdated_create_says_which_period_it_billed(shop_run: Run) -> None:
    created = shop_run("--now", NOW, "subscriptions", "create", "cus_1", "starter-monthly",
                       "--start", "2023-07-01T12:00:00Z", "--trial-days", "0", "--json")
    assert created.code == 0, created.err
    view = created.json()
    assert view["billed"] == "period 30 (2026-01-01 to 2026-02-01)"
    assert view["not_billed"] == ("30 earlier periods (2023-07-01 to 2026-01-01); "
                                  "--backfill bills them")
    shown = shop_run("subscriptions", "show", str(view["id"]), "--json").json()
    assert [i["period_start"] for i in shown["invoices"]] == ["2026-01-01T05:00:00+00:00"]
    table = shop_run("--now", NOW, "subscriptions", "create", "cus_1", "coffee-weekly",
                     "--start", "2025-12-01T12:00:00Z", "--trial-days", "0")
    assert "not_billed" in table.out and "earlier periods" in table.out


def test_backfill_beyond_the_bound_is_one_line_exit_2(shop_run: Run) -> None:
    result = shop_run("--now", NOW, "subscriptions", "create", "cus_1", "starter-monthly",
                      "--start", "2023-07-01T12:00:00Z", "--trial-days", "0", "--backfill")
    assert result.code == 2
    assert result.err.replace("\n", " ").split("error: ")[1].startswith(
        "backfilling would bill 30 past periods")
    assert shop_run("subscriptions", "list", "--json").json() == []
    ok = shop_run("--now", NOW, "subscriptions", "create", "cus_1", "starter-monthly",
                  "--start", "2025-11-01T12:00:00Z", "--trial-days", "0", "--backfill", "--json")
    assert ok.code == 0 and ok.json()["invoices_issued"] == 3


CSV = """customer,plan,paid_through,quantity,external_ref
cus_1,pro-monthly,2026-02-01,2,legacy-1
cus_1,coffee-weekly,2026-01-14,,legacy-2
"""


def test_import_dry_run_then_import_then_reimport_skips(shop_run: Run, tmp_path: Path) -> None:
    (tmp_path / "subs.csv").write_text(CSV)
    dry = shop_run("--now", NOW, "subscriptions", "import", "subs.csv", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert [r["outcome"] for r in dry.json()["rows"]] == ["would import", "would import"]
    assert shop_run("subscriptions", "list", "--json").json() == []
    done = shop_run("--now", NOW, "subscriptions", "import", "subs.csv")
    assert done.code == 0, done.err
    assert "imported 2, skipped 0" in done.out
    subs = shop_run("subscriptions", "list", "--json").json()
    assert [(s["plan"], s["status"], s["anchor"]) for s in subs] == [
        ("pro-monthly", "active", "2026-02-01"), ("coffee-weekly", "active", "2026-01-14")]
    again = shop_run("--now", "2026-01-20T12:00:00Z", "subscriptions", "import", "subs.csv",
                     "--json")
    assert again.code == 0, again.err
    assert (again.json()["imported"], again.json()["skipped"]) == (0, 2)
    assert len(shop_run("subscriptions", "list", "--json").json()) == 2


def test_import_reports_every_bad_row_by_line_and_imports_nothing(
    shop_run: Run, tmp_path: Path
) -> None:
    (tmp_path / "subs.csv").write_text(CSV + "ghost,pro-monthly,2026-02-01,,x\n"
                                             "cus_1,pro-monthly,2026-2-1,,y\n")
    result = shop_run("--now", NOW, "subscriptions", "import", "subs.csv")
    assert result.code == 2 and "Traceback" not in result.err
    lines = [line.removeprefix("error: ") for line in result.err.strip().splitlines()]
    assert lines == [
        "subs.csv:4: customer: no customer 'ghost'; add it first (billing customers add)",
        "subs.csv:5: paid_through: write the date as YYYY-MM-DD, the first day not yet paid "
        "(got '2026-2-1')",
    ]
    assert shop_run("subscriptions", "list", "--json").json() == []
    missing = shop_run("subscriptions", "import", "nope.csv")
    assert missing.code == 2 and "nope.csv: cannot read the file" in missing.err


def test_change_plan_preview_shows_that_an_unpaid_period_reduces_its_invoice(
    shop_run: Run,
) -> None:
    created = shop_run("--now", NOW, "subscriptions", "create", "cus_1", "pro-monthly",
                       "--trial-days", "0", "--json").json()
    args = ["--now", "2026-01-30T05:00:00Z", "subscriptions", "change-plan", str(created["id"]),
            "--plan", "starter-monthly", "--when", "now"]
    preview = shop_run(*args, "--preview", "--json")
    assert preview.code == 0, preview.err
    assert (preview.json()["reduced"], preview.json()["credit_to_balance"]) == (
        "INV-0000001 by 15.48 CAD", None)
    shown = shop_run("subscriptions", "show", str(created["id"]), "--json").json()
    assert shown["plan"] == "pro-monthly" and shown["invoices"][0]["total"] == "74.00 CAD"
    assert shop_run(*args).code == 0
    shown = shop_run("subscriptions", "show", str(created["id"]), "--json").json()
    assert shown["plan"] == "starter-monthly" and shown["invoices"][0]["total"] == "58.52 CAD"
    assert shop_run("customers", "show", "cus_1", "--json").json()["credit_balance"] == 0
