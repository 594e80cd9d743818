"""The catalog's duration syntax (``3d``) and the guards that keep every instant aware UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from billing.domain.timeutil import (
    format_duration,
    parse_duration,
    parse_instant,
    require_aware,
    to_utc,
)
from billing.errors import InvalidInput

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
GRAMMAR = re.compile(r"\s*[0-9]+[smhdwSMHDW]\s*")  # not IGNORECASE: it folds "ſ" to "s"
LARGEST = timedelta.max // timedelta(seconds=1)
"""Whole seconds in the longest timedelta."""

whole_seconds = st.integers(0, LARGEST).map(lambda s: timedelta(seconds=s))
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))


class NoOffset(tzinfo):
    """A tzinfo that does not know its offset: as good as naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


# --- parse_duration / format_duration: worked examples -----------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("3d", timedelta(days=3)),
     ("2w", timedelta(weeks=2)), ("45s", timedelta(seconds=45)), (" 3D ", timedelta(days=3)),
     ("0d", timedelta(0))],
)
def test_catalog_durations_parse_to_exact_timedeltas(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "d", "3", "3 d", "-3d", "+3d", "3.5d", "3dd", "3y", "1e3s", "three days", "P3D",
             "٣d", "²d", "3_0d"],
)
def test_anything_but_a_whole_number_and_a_unit_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="whole number followed by"):
        parse_duration(text)


def test_a_duration_too_long_for_timedelta_is_a_value_error() -> None:
    # The catalog's pydantic validators turn ValueError into a located problem; anything else
    # would crash the catalog load with a traceback.
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999w")


@pytest.mark.parametrize(
    ("delta", "text"),
    [(timedelta(0), "0s"), (timedelta(seconds=90), "90s"), (timedelta(minutes=90), "90m"),
     (timedelta(hours=36), "36h"), (timedelta(days=3), "3d"), (timedelta(days=14), "2w"),
     (timedelta(days=10), "10d"), (timedelta(hours=1, seconds=1), "3601s")],
)
def test_format_duration_picks_the_largest_exact_unit(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


# --- parse_duration / format_duration: properties ----------------------------------------------


@given(number=st.integers(0, 10**6), unit=st.sampled_from("smhdwSMHDW"),
       pad=st.sampled_from(["", " ", "\t", "\n "]))
def test_parse_duration_multiplies_the_number_by_the_unit(number: int, unit: str, pad: str) -> None:
    assert parse_duration(f"{pad}{number}{unit}{pad}") == timedelta(
        seconds=number * UNIT_SECONDS[unit.lower()]
    )


@settings(max_examples=500)
@given(text=st.one_of(st.text(max_size=8), st.from_regex(GRAMMAR, fullmatch=True),
                      st.from_regex(r"[0-9]{10,30}[smhdw]", fullmatch=True)))
@example(text="٣d")
@example(text="99999999999w")
def test_parse_duration_accepts_exactly_the_grammar_and_only_raises_value_error(
    text: str,
) -> None:
    try:
        parsed = parse_duration(text)
    except ValueError:
        digits = text.strip()[:-1]
        assert GRAMMAR.fullmatch(text) is None or int(digits) * UNIT_SECONDS[
            text.strip()[-1].lower()
        ] > LARGEST
        return
    assert GRAMMAR.fullmatch(text) is not None
    assert parsed >= timedelta(0)


@settings(max_examples=300)
@given(delta=whole_seconds)
@example(delta=timedelta(0))
@example(delta=timedelta(seconds=LARGEST))
def test_format_duration_round_trips_through_parse_duration(delta: timedelta) -> None:
    text = format_duration(delta)
    assert GRAMMAR.fullmatch(text)
    assert parse_duration(text) == delta


@given(delta=whole_seconds.filter(lambda d: d > timedelta(0)))
def test_format_duration_uses_the_largest_unit_that_divides_exactly(delta: timedelta) -> None:
    text = format_duration(delta)
    number, unit = int(text[:-1]), text[-1]
    larger = [size for size in UNIT_SECONDS.values() if size > UNIT_SECONDS[unit]]
    assert all(number * UNIT_SECONDS[unit] % size for size in larger)


# --- parse_instant / require_aware ---------------------------------------------------------------


def test_parse_instant_reads_z_and_offsets_as_utc() -> None:
    expected = datetime(2026, 1, 31, 5, tzinfo=UTC)
    for text in ("2026-01-31T05:00:00Z", "2026-01-31T00:00:00-05:00", " 2026-01-31T05:00Z\n",
                 "2026-01-31T10:30:00+05:30"):
        parsed = parse_instant(text)
        assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-01-31T00:00:00", "2026-01-31", "2026-01-31 05:00"])
def test_parse_instant_refuses_times_without_an_offset(text: str) -> None:
    with pytest.raises(InvalidInput, match="naive datetime"):
        parse_instant(text)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-02-30T00:00:00Z", "2026-01-31T25:00Z"])
def test_parse_instant_refuses_what_is_not_iso_8601(text: str) -> None:
    with pytest.raises(InvalidInput, match="not an ISO 8601 instant"):
        parse_instant(text)


@given(at=st.datetimes(timezones=st.one_of(offsets, st.timezones())))
def test_parse_instant_round_trips_any_aware_instant_to_utc(at: datetime) -> None:
    parsed = parse_instant(at.isoformat())
    assert parsed.tzinfo is UTC
    assert parsed == at.astimezone(UTC)
    assert to_utc(at) == parsed


@given(at=st.datetimes())
def test_naive_datetimes_are_rejected_everywhere(at: datetime) -> None:
    for guard in (require_aware, to_utc):
        with pytest.raises(InvalidInput, match="naive datetime"):
            guard(at)
    with pytest.raises(InvalidInput):
        parse_instant(at.isoformat())


def test_a_tzinfo_without_an_offset_counts_as_naive() -> None:
    with pytest.raises(InvalidInput, match="naive datetime"):
        require_aware(datetime(2026, 1, 31, tzinfo=NoOffset()))


@given(at=st.datetimes(timezones=st.one_of(offsets, st.timezones())))
def test_require_aware_passes_aware_instants_through_unchanged(at: datetime) -> None:
    assert require_aware(at) is at
