"""The import file's shape: header, required cells, dates, numbers, each mistake located."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from billing.cli.import_csv import read_import_csv
from billing.errors import InvalidInput
from billing.services.imports import ImportRow


def _read(tmp_path: Path, text: str, *, encoding: str = "utf-8") -> tuple[list[ImportRow],
                                                                           list[str]]:
    path = tmp_path / "subs.csv"
    path.write_bytes(text.encode(encoding))
    rows, problems = read_import_csv(path)
    return rows, [str(p).removeprefix(f"{tmp_path}/") for p in problems]


def test_a_well_formed_file_gives_rows_with_their_lines(tmp_path: Path) -> None:
    rows, problems = _read(tmp_path, (
        "\ufeffCustomer , plan,paid_through,quantity,card,external_ref\n"
        "ann,pro-monthly,2026-02-01,3,card_1,old-1\n"
        "\n"
        'bob,starter-monthly,2026-02-15,,,"old\n2"\n'
        "cy,coffee-weekly,2026-01-20,,,\n"))
    assert problems == []
    assert rows == [
        ImportRow(2, "ann", "pro-monthly", date(2026, 2, 1), 3, "card_1", "old-1"),
        ImportRow(4, "bob", "starter-monthly", date(2026, 2, 15), 1, None, "old\n2"),
        ImportRow(6, "cy", "coffee-weekly", date(2026, 1, 20), 1, None, None),
    ]


def test_the_optional_columns_may_be_left_out(tmp_path: Path) -> None:
    rows, problems = _read(tmp_path, "paid_through,plan,customer\n2026-02-01,pro-monthly,ann\n")
    assert problems == [] and rows == [ImportRow(2, "ann", "pro-monthly", date(2026, 2, 1))]


def test_an_empty_file_says_what_the_header_must_be(tmp_path: Path) -> None:
    assert _read(tmp_path, "") == ([], [
        "subs.csv:1: header: the file is empty; the first line must name the columns: "
        "customer, plan, paid_through and optionally quantity, card, external_ref"])


@pytest.mark.parametrize("text,expected", [
    ("ann,pro-monthly,2026-02-01\n", [
        "subs.csv:1: header: unknown column 'ann'; the first line must name the columns: "
        "customer, plan, paid_through and optionally quantity, card, external_ref",
        "subs.csv:1: header: unknown column 'pro-monthly'; the first line must name the "
        "columns: customer, plan, paid_through and optionally quantity, card, external_ref",
        "subs.csv:1: header: unknown column '2026-02-01'; the first line must name the "
        "columns: customer, plan, paid_through and optionally quantity, card, external_ref",
        "subs.csv:1: header: missing column 'customer'; the first line must name the columns: "
        "customer, plan, paid_through and optionally quantity, card, external_ref",
        "subs.csv:1: header: missing column 'plan'; the first line must name the columns: "
        "customer, plan, paid_through and optionally quantity, card, external_ref",
        "subs.csv:1: header: missing column 'paid_through'; the first line must name the "
        "columns: customer, plan, paid_through and optionally quantity, card, external_ref"]),
    ("customer,plan,paid_through,plan\n", ["subs.csv:1: header: column 'plan' appears twice"]),
])
def test_a_bad_header_is_reported_and_no_row_is_read(tmp_path: Path, text: str,
                                                     expected: list[str]) -> None:
    rows, problems = _read(tmp_path, text + "ann,pro-monthly,2026-02-01\n")
    assert rows == [] and problems == expected


def test_every_bad_cell_of_every_row_is_reported(tmp_path: Path) -> None:
    rows, problems = _read(tmp_path, (
        "customer,plan,paid_through,quantity,card,external_ref\n"
        ",pro-monthly,02/01/2026,two,,\n"
        "ann,,2026-02-30,0,,\n"
        "ann,pro-monthly,2026-02-01,99999999999999999999999999,,\n"
        "ann,pro-monthly\n"
        f"ann,pro-monthly,2026-02-01,1,{'c' * 31},\n"
        "ann,pro-monthly,2026-02-01,1,,ok\n"))
    assert problems == [
        "subs.csv:2: customer: is required",
        "subs.csv:2: paid_through: write the date as YYYY-MM-DD, the first day not yet paid "
        "(got '02/01/2026')",
        "subs.csv:2: quantity: must be a whole number (got 'two')",
        "subs.csv:3: plan: is required",
        "subs.csv:3: paid_through: '2026-02-30' is not a date in the calendar",
        "subs.csv:3: quantity: must be between 1 and 1000000 (got 0)",
        "subs.csv:4: quantity: must be between 1 and 1000000 (got 99999999999999999999...)",
        "subs.csv:5: row: has 2 values but the header has 6 columns",
        "subs.csv:6: card: is longer than 30 characters",
    ]
    assert [r.line for r in rows] == [7]


def test_a_file_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"subs\.csv:2: not UTF-8 text \(byte 0xeb\)"):
        _read(tmp_path, "customer,plan,paid_through\nann,pro-monthly,2026-02-01,Zoë\n",
              encoding="latin-1")


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"nope\.csv: cannot read the file"):
        read_import_csv(tmp_path / "nope.csv")


def test_broken_quoting_is_reported_with_its_line(tmp_path: Path) -> None:
    _, problems = _read(tmp_path, 'customer,plan,paid_through\nann,"pro"x,2026-02-01\n')
    assert problems == ["subs.csv:2: not valid CSV: ',' expected after '\"'"]
