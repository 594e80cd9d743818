"""``billing report`` as a merchant runs it: one-line errors, the three formats, and --email."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from billing.cli.app import main
from billing.reports.render import csv_text, to_json
from billing.store.models import OutboxMessage
from billing.store.uow import UnitOfWork
from tests.reports.conftest import February

NOW = ("--now", "2026-03-03T12:00:00Z")
FEB = ("--from", "2026-02-01", "--to", "2026-02-28")


@dataclass
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Run:
    monkeypatch.chdir(tmp_path)
    for name in ("BILLING_CONFIG", "BILLING_DATABASE_URL", "BILLING_TIMEZONE",
                 "BILLING_MERCHANT_EMAIL", "BILLING_MERCHANT_NAME"):
        monkeypatch.delenv(name, raising=False)

    def _run(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


@pytest.fixture
def run_feb(run: Run, february: February, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("BILLING_DATABASE_URL", february.url)
    monkeypatch.setenv("BILLING_MERCHANT_EMAIL", "Bean & Leaf <owner@beanleaf.example>")
    monkeypatch.setenv("BILLING_MERCHANT_NAME", "Bean & Leaf")
    return run


@pytest.mark.parametrize("args,message", [
    (("--from", "2026-02-30", "--to", "2026-03-01"),
     "--from: expected a date like 2026-11-30, got '2026-02-30'"),
    (("--from", "2026-03-01", "--to", "2026-02-01"),
     "--from 2026-03-01 is after --to 2026-02-01"),
    (("--from", "2026-02-01", "--to", "feb"), "--to: expected a date like 2026-11-30, got 'feb'"),
    (("--from", "2999-01-01", "--to", "2999-01-31"), "--from 2999-01-01 is in the future"),
    ((*FEB, "--format", "pdf"), "--format must be one of html, csv, json (got 'pdf')"),
    (("--scheduled", "--from", "2026-02-01"), "--scheduled decides the range and the recipient"),
])
def test_a_mistake_is_one_line_and_exit_2(run: Run, args: tuple[str, ...], message: str) -> None:
    result = run("report", *args)
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (Path.cwd() / "billing.db").exists()  # refused before opening any database


def test_json_on_stdout_is_the_report(run_feb: Run, february: February) -> None:
    result = run_feb(*NOW, "report", *FEB, "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == to_json(february.report)


def test_without_dates_it_reports_last_month(run_feb: Run, february: February) -> None:
    result = run_feb(*NOW, "report", "--format", "json")
    assert json.loads(result.out)["range"]["from"] == "2026-02-01"
    assert json.loads(result.out) == to_json(february.report)


def test_output_file_takes_its_format_from_its_suffix(run_feb: Run, february: February,
                                                      tmp_path: Path) -> None:
    target = tmp_path / "february.csv"
    result = run_feb(*NOW, "report", *FEB, "-o", str(target))
    assert result.code == 0 and result.out.strip() == (
        f"wrote {target} (csv, 2026-02-01 to 2026-02-28)")
    assert target.read_text() == csv_text(february.report)
    page = tmp_path / "february.html"
    assert run_feb(*NOW, "report", *FEB, "-o", str(page)).code == 0
    assert page.read_text().startswith("<!DOCTYPE html>") and page.read_text().count("<svg ") == 3


def test_an_unwritable_output_is_one_line(run_feb: Run, tmp_path: Path) -> None:
    result = run_feb(*NOW, "report", *FEB, "-o", str(tmp_path / "missing" / "r.html"))
    assert result.code == 2 and result.err.count("\n") == 1 and "cannot write" in result.err


def test_email_queues_the_report_to_the_merchant_once(run_feb: Run, february: February) -> None:
    first = run_feb(*NOW, "report", *FEB, "--email")
    assert first.code == 0, first.err
    assert first.out.startswith("queued report email #") and "<svg" not in first.out
    again = run_feb(*NOW, "report", *FEB, "--email")  # the same request as of the same instant
    assert again.code == 0 and again.out.strip() == "this report email is queued already"
    with UnitOfWork(february.store) as uow:
        [row] = uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.template == "report", OutboxMessage.dedupe_key.startswith(
                "report:manual:")))
    assert row.to_address == "Bean & Leaf <owner@beanleaf.example>"
    assert row.subject == "Bean & Leaf: billing report, 2026-02-01 to 2026-02-28"
    assert "MRR at the end:        243.44 CAD (start 146.83 CAD)" in row.body_text
    assert row.body_html is not None and row.body_html.count("<svg ") == 3
    assert row.send_after == row.created_at


def test_email_with_a_now_before_the_history_is_refused(run_feb: Run) -> None:
    result = run_feb("--now", "2026-03-02T00:00:00Z", "report", *FEB, "--email")
    assert result.code == 2 and "before this database's newest event" in result.err
    # reading as of that instant is fine
    assert run_feb("--now", "2026-03-02T00:00:00Z", "report", *FEB, "--format", "json").code == 0
