"""The guard rails of ``--now``: which instants a writing command may act as."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from billing.domain.timetravel import (
    FUTURE_TOLERANCE,
    TimeFacts,
    judge_now,
    parse_now,
    require_plausible,
)
from billing.errors import InvalidInput

WALL = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LAST_RUN = datetime(2026, 5, 31, tzinfo=UTC)


def facts(*, last_run: datetime | None = LAST_RUN, newest_event: datetime | None = None,
          sandbox: bool = False) -> TimeFacts:
    return TimeFacts(wall=WALL, last_run=last_run, newest_event=newest_event, sandbox=sandbox)


def test_the_clock_give_or_take_the_tolerance_is_allowed() -> None:
    assert judge_now(WALL + timedelta(minutes=3), facts()).allowed
    assert judge_now(WALL + FUTURE_TOLERANCE, facts()).allowed


def test_an_instant_before_the_last_run_is_refused_and_says_which_run() -> None:
    verdict = judge_now(datetime(2026, 5, 30, tzinfo=UTC), facts())
    assert not verdict.allowed
    assert "before this database's last run (2026-05-31T00:00:00+00:00)" in verdict.reason


def test_the_last_runs_own_instant_is_allowed_so_a_repeated_run_is_not_refused() -> None:
    assert judge_now(LAST_RUN, facts()).allowed


def test_an_instant_before_the_newest_event_is_refused_even_without_a_run() -> None:
    event = datetime(2026, 5, 20, tzinfo=UTC)
    verdict = judge_now(event - timedelta(seconds=1), facts(last_run=None, newest_event=event))
    assert not verdict.allowed and "newest event" in verdict.reason
    assert judge_now(event, facts(last_run=None, newest_event=event)).allowed


def test_the_future_is_refused_with_the_real_gateway_and_allowed_with_the_sandbox() -> None:
    later = datetime(2026, 7, 1, tzinfo=UTC)
    verdict = judge_now(later, facts())
    assert not verdict.allowed and "in the future" in verdict.reason and "--sandbox" in \
        verdict.reason
    assert judge_now(WALL + FUTURE_TOLERANCE + timedelta(seconds=1), facts()).allowed is False
    assert judge_now(later, facts(sandbox=True)).allowed


def test_the_sandbox_may_not_go_back_in_time_either() -> None:
    assert not judge_now(datetime(2026, 5, 1, tzinfo=UTC), facts(sandbox=True)).allowed


def test_a_fresh_database_takes_any_past_instant() -> None:
    assert judge_now(datetime(2001, 1, 1, tzinfo=UTC), facts(last_run=None)).allowed


@pytest.mark.parametrize("text", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z",
                                  "1999-12-31T23:59:59Z", "3000-01-01T00:00:00Z"])
def test_instants_outside_the_years_2000_to_2999_are_user_errors(text: str) -> None:
    with pytest.raises(InvalidInput, match="years 2000 to 2999"):
        parse_now(text, wall=WALL)


def test_the_edges_of_the_plausible_range_are_accepted() -> None:
    assert require_plausible(datetime(2000, 1, 1, tzinfo=UTC)).year == 2000
    assert parse_now("2999-12-31T23:59:59Z", wall=WALL).year == 2999


def test_plus_a_duration_is_that_far_ahead_of_the_wall_clock() -> None:
    assert parse_now("+30d", wall=WALL) == WALL + timedelta(days=30)
    assert parse_now(" +12h ", wall=WALL) == WALL + timedelta(hours=12)


@pytest.mark.parametrize("text,message", [
    ("+soon", "after the + the duration must be a whole number"),
    ("+400000w", "years 2000 to 2999"),
    ("+99999999999999999d", "too long"),
    ("yesterday", "not an ISO 8601 instant"),
])
def test_bad_now_values_are_one_clear_user_error(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse_now(text, wall=WALL)
