"""Guards for instants: the engine stores and compares only timezone-aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billing.errors import InvalidInput


def require_aware(at: datetime) -> datetime:
    """Reject naive datetimes at the boundary; a naive time has no single meaning in billing."""
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise InvalidInput(f"naive datetime {at.isoformat()} has no timezone; give an offset or Z")
    return at


def to_utc(at: datetime) -> datetime:
    """Normalize an aware instant to UTC."""
    return require_aware(at).astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant with an offset (``2026-01-31T00:00:00Z``) into aware UTC."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"not an ISO 8601 instant: {text!r}") from exc
    return to_utc(at)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """Parse ``30m``, ``12h``, ``3d`` or ``2w`` into a timedelta; the catalog's duration syntax."""
    raw = text.strip().lower()
    unit = raw[-1:]
    number = raw[:-1]
    if unit not in _UNITS or not (number.isascii() and number.isdigit()):
        raise ValueError(
            f"must be a whole number followed by s, m, h, d or w, like 3d (got {text!r})"
        )
    try:
        return timedelta(seconds=int(number) * _UNITS[unit])
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def format_duration(delta: timedelta) -> str:
    """Inverse of ``parse_duration`` for display, choosing the largest exact unit."""
    seconds = int(delta.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
