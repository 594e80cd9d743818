"""Reading a subscriber import file (CSV) into rows, with every mistake located by line and column.

Only the file's shape is checked here: the header, required cells, dates and numbers. Whether a
customer, plan or card exists, and whether a row was imported before, is the service's
business (``billing.services.imports``); both kinds of problem are reported together.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

from billing.domain.plans import MAX_QUANTITY
from billing.errors import InvalidInput, Problem
from billing.services.imports import ImportRow

REQUIRED = ("customer", "plan", "paid_through")
OPTIONAL = ("quantity", "card", "external_ref")
COLUMNS = REQUIRED + OPTIONAL
MAX_LENGTH = {"customer": 64, "plan": 40, "card": 30, "external_ref": 64}
"""The longest value each text column can hold in the database (or the gateway, for cards)."""

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Report = Callable[[str, str], None]
"""``report(column, why)``: how cell checks add a problem for their row."""


def read_import_csv(path: Path) -> tuple[list[ImportRow], list[Problem]]:
    """The well-formed rows of ``path`` and a problem for every cell that is not.

    The file must be UTF-8 (a BOM, as spreadsheets write it, is fine) and start with a header
    naming the columns, in any order. Blank lines are ignored.
    """
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InvalidInput(f"{name}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                           "save the file as CSV UTF-8") from None
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    problems: list[Problem] = []
    rows: list[ImportRow] = []
    try:
        header = _header(name, next(reader, None), problems)
        if header is None:
            return [], problems
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            row = _row(name, start, header, cells, problems)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        problems.append(Problem(name, reader.line_num, "", f"not valid CSV: {exc}"))
    return rows, problems


def _header(name: str, cells: list[str] | None, problems: list[Problem]) -> list[str] | None:
    expected = f"the first line must name the columns: {', '.join(REQUIRED)}" + (
        f" and optionally {', '.join(OPTIONAL)}")
    if cells is None:
        problems.append(Problem(name, 1, "header", f"the file is empty; {expected}"))
        return None
    header = [c.strip().lower() for c in cells]
    before = len(problems)
    for i, column in enumerate(header):
        if column not in COLUMNS:
            problems.append(Problem(name, 1, "header", f"unknown column {cells[i].strip()!r}; "
                                    f"{expected}"))
        elif header.index(column) != i:
            problems.append(Problem(name, 1, "header", f"column {column!r} appears twice"))
    for column in REQUIRED:
        if column not in header:
            problems.append(Problem(name, 1, "header", f"missing column {column!r}; {expected}"))
    return header if len(problems) == before else None


def _row(name: str, line: int, header: list[str], cells: list[str],
         problems: list[Problem]) -> ImportRow | None:
    if len(cells) != len(header):
        problems.append(Problem(name, line, "row", f"has {len(cells)} values but the header "
                                f"has {len(header)} columns"))
        return None
    values = {column: cell.strip() for column, cell in zip(header, cells, strict=True)}
    before = len(problems)

    def bad(column: str, why: str) -> None:
        problems.append(Problem(name, line, column, why))

    for column in REQUIRED:
        if not values[column]:
            bad(column, "is required")
    for column, longest in MAX_LENGTH.items():
        if len(values.get(column, "")) > longest:
            bad(column, f"is longer than {longest} characters")
    paid_through = _date(values["paid_through"], bad)
    quantity = _quantity(values.get("quantity", ""), bad)
    if len(problems) > before or paid_through is None or quantity is None:
        return None
    return ImportRow(line, values["customer"], values["plan"], paid_through, quantity,
                     values.get("card") or None, values.get("external_ref") or None)


def _date(text: str, bad: Report) -> date | None:
    if not text:
        return None
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        bad("paid_through", f"{text!r} is not a date in the calendar")
        return None
    bad("paid_through", f"write the date as YYYY-MM-DD, the first day not yet paid (got {text!r})")
    return None


def _quantity(text: str, bad: Report) -> int | None:
    if not text:
        return 1
    if not (text.isascii() and text.isdigit()):
        bad("quantity", f"must be a whole number (got {text!r})")
        return None
    value = int(text) if len(text) <= 18 else None  # int() of 5,000 digits is an error itself
    if value is None or not 1 <= value <= MAX_QUANTITY:
        shown = text if len(text) <= 20 else text[:20] + "..."
        bad("quantity", f"must be between 1 and {MAX_QUANTITY} (got {shown})")
        return None
    return value

