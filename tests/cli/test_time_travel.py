"""``--now`` with guard rails: a plausible year, never back in time for a write, and forward
in time only with the sandbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cli.conftest import SETUP_AT, Run
from tests.cli.snapshots import everything, meta

T1 = "2026-02-01T00:00:00Z"
T2 = "2026-03-01T00:00:00Z"
WRITES = [
    ["run-once"],
    ["customers", "add", "cus_9", "--email", "n@example.com", "--name", "N"],
    ["subscriptions", "create", "cus_1", "starter-monthly"],
    ["plans", "apply"],
    ["outbox", "send"],
    ["db", "accept-restore", "--yes"],
]
READS = [
    ["customers", "list"], ["subscriptions", "list"], ["events"], ["outbox", "list"],
    ["plans", "list"], ["simulate", "--until", "2026-03-31"], ["config", "show"],
]


@pytest.mark.parametrize("where", ["root", "run-once"])
@pytest.mark.parametrize("instant", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z"])
def test_an_implausible_year_is_refused_at_once(run: Run, where: str, instant: str) -> None:
    started = time.monotonic()
    args = ["--now", instant, "run-once"] if where == "root" else ["run-once", "--now", instant]
    result = run(*args)
    assert result.code == 2
    assert "--now must be in the years 2000 to 2999" in result.err
    assert "Traceback" not in result.err
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("command", WRITES, ids=" ".join)
def test_writes_may_not_act_before_the_last_run(
    gw_run: Run, db_url: str, command: list[str], plans_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLING_PLANS_DIR", str(plans_dir))
    assert gw_run("--now", T2, "run-once").code == 0
    assert meta(db_url)["last_run_at"] == "2026-03-01T00:00:00+00:00"
    before = everything(db_url)

    result = gw_run("--now", T1, *command)

    assert result.code == 2, result.out
    assert len(result.err.strip().splitlines()) == 1
    assert ("--now 2026-02-01T00:00:00+00:00 is before this database's last run "
            "(2026-03-01T00:00:00+00:00)") in result.err
    assert everything(db_url) == before


@pytest.mark.parametrize("command", READS, ids=" ".join)
def test_reads_may_look_at_any_instant(gw_run: Run, command: list[str]) -> None:
    assert gw_run("--now", T2, "run-once").code == 0
    result = gw_run("--now", T1, *command)  # before the last run
    assert result.code == 0, result.err


def test_a_write_may_not_act_before_the_newest_event(gw_run: Run, db_url: str) -> None:
    added = gw_run("--now", T2, "customers", "add", "cus_2", "--email", "b@example.com",
                   "--name", "B")
    assert added.code == 0 and "last_run_at" not in meta(db_url)
    result = gw_run("run-once", "--now", T1)
    assert result.code == 2 and "before this database's newest event (2026-03-01" in result.err
    assert gw_run("run-once", "--now", T2).code == 0  # the same instant is fine


def test_the_future_is_refused_against_the_real_gateway(gw_run: Run, db_url: str) -> None:
    before = everything(db_url)
    for args in (["--now", "+2d", "run-once"],
                 ["--now", "+2d", "customers", "add", "c", "--email", "c@example.com", "--name",
                  "C"]):
        result = gw_run(*args)
        assert result.code == 2 and "is in the future" in result.err
        assert "travel forward only with --sandbox" in result.err
    assert everything(db_url) == before
    assert gw_run("--now", "+1m", "run-once").code == 0  # within the clock's tolerance


def test_the_sandbox_may_travel_forward_and_remembers_how_far(
    run: Run, plans_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_PLANS_DIR", str(plans_dir))
    ahead = run("--sandbox", "--now", "+40d", "run-once", "--json")
    assert ahead.code == 0, ahead.err
    # the sandbox's database now remembers a run 40 days ahead: the clock is "in the past"
    back = run("--sandbox", "--now", "+1d", "customers", "add", "c", "--email", "c@example.com",
               "--name", "C")
    assert back.code == 2 and "before this database's last run" in back.err
    assert run("--sandbox", "--now", "+41d", "customers", "add", "c", "--email",
               "c@example.com", "--name", "C").code == 0


def test_gw_run_set_up_before_the_instants_the_tests_act_at() -> None:
    assert SETUP_AT < T1 < T2
