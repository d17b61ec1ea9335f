"""Budget windows: which period an instant falls into, in a named IANA time zone.

All boundaries are integer epoch seconds and windows partition time: every instant lies in exactly one
window ``[start, end)`` and a window's end is the next window's start.

- ``day``, ``week`` (starting Monday) and ``month`` follow the local calendar. A window starts at the first
  instant whose local wall-clock time reaches the period's first midnight, so a day with a DST change lasts
  23 or 25 hours, a midnight skipped by a DST gap starts the day at the transition, and a repeated midnight
  starts it at its first occurrence.
- ``minute`` and ``hour`` are elapsed periods aligned to the local clock (an hour window in Asia/Kolkata
  starts at :30 UTC). An offset change that is not a whole period (Australia/Lord_Howe's 30-minute DST)
  splits the period at the transition instead of overlapping two windows.
- ``lifetime`` is one window from the epoch, without end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WindowKind = Literal["minute", "hour", "day", "week", "month", "lifetime"]
WINDOW_KINDS: Final[tuple[str, ...]] = get_args(WindowKind)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND: Final = timedelta(seconds=1)
_FIXED_PERIOD: Final = {"minute": 60, "hour": 3600}


def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; raises ``ValueError`` with the name on an unknown zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None


def _epoch(moment: datetime) -> int:
    return (moment - _EPOCH) // _SECOND


def _local(t: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(t, tz).replace(tzinfo=None)


def _offset(t: int, tz: ZoneInfo) -> int:
    offset = datetime.fromtimestamp(t, tz).utcoffset()
    assert offset is not None
    return offset // _SECOND


def _first_true(lo: int, hi: int, predicate: Callable[[int], bool]) -> int:
    """Smallest integer in (lo, hi] for which a monotone predicate holds; predicate(hi) must hold."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if predicate(mid):
            hi = mid
        else:
            lo = mid
    return hi


def first_instant(wall: datetime, tz: ZoneInfo) -> int:
    """The first instant at which the local clock reads ``wall`` or later (``wall`` is naive)."""
    early = _epoch(wall.replace(tzinfo=tz, fold=0))
    late = _epoch(wall.replace(tzinfo=tz, fold=1))
    lo, hi = min(early, late), max(early, late)
    if _local(lo, tz) == wall:
        return lo  # exists; for a repeated time, the first occurrence
    # In a DST gap: the clock jumps over ``wall`` at the transition, which lies in (lo, hi].
    return _first_true(lo, hi, lambda t: _local(t, tz) >= wall)


def _period_start(kind: str, day: date) -> date:
    if kind == "week":
        return day - timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    return day


def _next_period(kind: str, start: date) -> date:
    if kind == "week":
        return start + timedelta(days=7)
    if kind == "month":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=1)


def _previous_period(kind: str, start: date) -> date:
    return _period_start(kind, start - timedelta(days=1))


def _calendar_bounds(kind: str, tz: ZoneInfo, t: int) -> tuple[int, int]:
    def boundary(day: date) -> int:
        return first_instant(datetime(day.year, day.month, day.day), tz)

    period = _period_start(kind, _local(t, tz).date())
    start = boundary(period)
    # A clock set back across midnight can show yesterday's date after today's window began.
    while t < start:
        period = _previous_period(kind, period)
        start = boundary(period)
    end = boundary(_next_period(kind, period))
    while t >= end:
        period = _next_period(kind, period)
        start, end = end, boundary(_next_period(kind, period))
    return start, end


def _fixed_bounds(period: int, tz: ZoneInfo, t: int) -> tuple[int, int]:
    offset = _offset(t, tz)
    start = (t + offset) // period * period - offset
    end = start + period
    if _offset(start, tz) != offset:
        start = _first_true(start, t, lambda x: _offset(x, tz) == offset)
    if _offset(end - 1, tz) != offset:
        end = _first_true(t, end - 1, lambda x: _offset(x, tz) != offset)
    return start, end


def window_bounds(kind: str, tz: ZoneInfo, t: int) -> tuple[int, int | None]:
    """``(start, end)`` in epoch seconds of the ``kind`` window holding the instant ``t`` (epoch seconds);
    ``end`` is ``None`` for ``lifetime``."""
    if kind == "lifetime":
        return 0, None
    period = _FIXED_PERIOD.get(kind)
    if period is not None:
        return _fixed_bounds(period, tz, t)
    if kind in ("day", "week", "month"):
        return _calendar_bounds(kind, tz, t)
    raise ValueError(f"unknown window {kind!r}; expected one of {', '.join(WINDOW_KINDS)}")


class Window:
    """A window kind in a time zone. ``bounds`` caches the current window, so the hot path is two integer
    comparisons until the boundary passes."""

    __slots__ = ("_cached", "kind", "timezone", "tz")

    def __init__(self, kind: str, timezone: str = "UTC") -> None:
        if kind not in WINDOW_KINDS:
            raise ValueError(f"unknown window {kind!r}; expected one of {', '.join(WINDOW_KINDS)}")
        self.kind = kind
        self.timezone = timezone
        self.tz = zone(timezone)
        self._cached: tuple[int, int | None] = (1, 0)  # empty: the first call computes

    def bounds(self, t: float) -> tuple[int, int | None]:
        second = int(t // 1)
        cached = self._cached
        start, end = cached
        if start <= second and (end is None or second < end):
            return cached
        cached = window_bounds(self.kind, self.tz, second)
        self._cached = cached
        return cached

    def local(self, t: int) -> datetime:
        """An epoch second as an aware datetime in this window's zone."""
        return datetime.fromtimestamp(t, self.tz)

    def __repr__(self) -> str:
        return f"Window({self.kind!r}, {self.timezone!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Window) and (self.kind, self.timezone) == (other.kind, other.timezone)

    def __hash__(self) -> int:
        return hash((self.kind, self.timezone))
