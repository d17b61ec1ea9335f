"""Window maths: exact boundaries in named time zones, DST, month ends, week starts; partition properties."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bedrock_budget.budgets.windows import WINDOW_KINDS, Window, window_bounds, zone


def at(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def local(t: int, tz: str) -> str:
    return datetime.fromtimestamp(t, zone(tz)).isoformat()


def bounds(kind: str, tz: str, iso: str) -> tuple[str, str | None, float | None]:
    start, end = window_bounds(kind, zone(tz), at(iso))
    return (
        local(start, tz),
        None if end is None else local(end, tz),
        None if end is None else (end - start) / 3600,
    )


@pytest.mark.parametrize(
    ("kind", "tz", "instant", "expected"),
    [
        # DST days last 23 and 25 hours; the window is the local calendar day.
        ("day", "America/New_York", "2024-03-10T12:00:00+00:00",
         ("2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00", 23)),
        ("day", "America/New_York", "2024-11-03T12:00:00+00:00",
         ("2024-11-03T00:00:00-04:00", "2024-11-04T00:00:00-05:00", 25)),
        ("day", "Europe/Berlin", "2024-03-31T01:59:59+01:00",
         ("2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00", 23)),
        ("day", "Europe/Berlin", "2024-10-27T02:30:00+01:00",
         ("2024-10-27T00:00:00+02:00", "2024-10-28T00:00:00+01:00", 25)),
        # Midnight skipped by DST: the day starts at the transition (01:00 local).
        ("day", "America/Santiago", "2024-09-08T05:00:00+00:00",
         ("2024-09-08T01:00:00-03:00", "2024-09-09T00:00:00-03:00", 23)),
        # A whole calendar day skipped (Samoa, 30 Dec 2011): the 29th ends where the 31st starts.
        ("day", "Pacific/Apia", "2011-12-29T23:00:00-10:00",
         ("2011-12-29T00:00:00-10:00", "2011-12-31T00:00:00+14:00", 24)),
        # Weeks start on Monday; months at the first, across leap years and year ends.
        ("week", "UTC", "2025-06-10T12:00:00+00:00",
         ("2025-06-09T00:00:00+00:00", "2025-06-16T00:00:00+00:00", 168)),
        ("week", "Europe/Berlin", "2024-03-31T12:00:00+02:00",
         ("2024-03-25T00:00:00+01:00", "2024-04-01T00:00:00+02:00", 167)),
        ("month", "UTC", "2024-02-29T23:59:59+00:00",
         ("2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00", 29 * 24)),
        ("month", "UTC", "2023-02-15T00:00:00+00:00",
         ("2023-02-01T00:00:00+00:00", "2023-03-01T00:00:00+00:00", 28 * 24)),
        ("month", "Europe/Berlin", "2024-12-31T23:30:00+01:00",
         ("2024-12-01T00:00:00+01:00", "2025-01-01T00:00:00+01:00", 31 * 24)),
        ("month", "America/New_York", "2024-03-15T00:00:00-04:00",
         ("2024-03-01T00:00:00-05:00", "2024-04-01T00:00:00-04:00", 31 * 24 - 1)),
        # Hours follow the local clock: :30 in Kolkata, :15 in Kathmandu, a half hour at Lord Howe's DST.
        ("hour", "Asia/Kolkata", "2024-02-29T23:10:00+00:00",
         ("2024-03-01T04:00:00+05:30", "2024-03-01T05:00:00+05:30", 1)),
        ("hour", "Asia/Kathmandu", "2024-01-01T00:00:00+00:00",
         ("2024-01-01T05:00:00+05:45", "2024-01-01T06:00:00+05:45", 1)),
        ("hour", "Australia/Lord_Howe", "2024-10-06T02:40:00+11:00",
         ("2024-10-06T02:30:00+11:00", "2024-10-06T03:00:00+11:00", 0.5)),
        ("hour", "America/New_York", "2024-11-03T01:30:00-05:00",
         ("2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00", 1)),
        ("hour", "America/New_York", "2024-11-03T01:30:00-04:00",
         ("2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", 1)),
        ("minute", "UTC", "2025-01-01T00:00:59.999+00:00",
         ("2025-01-01T00:00:00+00:00", "2025-01-01T00:01:00+00:00", 1 / 60)),
        ("lifetime", "UTC", "2025-01-01T00:00:00+00:00", ("1970-01-01T00:00:00+00:00", None, None)),
    ],
)  # fmt: skip
def test_window_bounds(
    kind: str, tz: str, instant: str, expected: tuple[str, str | None, float | None]
) -> None:
    assert bounds(kind, tz, instant) == expected


@pytest.mark.parametrize(
    ("kind", "tz", "boundary"),
    [
        ("day", "Europe/Berlin", "2024-03-31T00:00:00+01:00"),
        ("day", "America/New_York", "2024-11-04T00:00:00-05:00"),
        ("week", "Asia/Tokyo", "2025-06-09T00:00:00+09:00"),
        ("month", "Australia/Sydney", "2025-04-01T00:00:00+11:00"),
        ("month", "America/Los_Angeles", "2025-01-01T00:00:00-08:00"),
        ("hour", "UTC", "2025-01-01T13:00:00+00:00"),
    ],
)
def test_a_window_resets_exactly_at_its_boundary(kind: str, tz: str, boundary: str) -> None:
    window = Window(kind, tz)
    edge = at(boundary)
    before, after = window.bounds(edge - 1), window.bounds(edge)
    assert before[1] == edge
    assert after[0] == edge
    assert window.bounds(edge - 0.001) == before  # fractions of a second belong to the earlier window


def test_window_cache_follows_time() -> None:
    window = Window("day", "UTC")
    first = window.bounds(at("2025-01-01T10:00:00+00:00"))
    assert window.bounds(at("2025-01-01T23:59:59+00:00")) is first
    assert window.bounds(at("2025-01-02T00:00:00+00:00"))[0] == first[1]
    assert window.bounds(at("2024-12-31T12:00:00+00:00"))[1] == first[0]  # the clock may go backwards


def test_unknown_kinds_and_zones() -> None:
    with pytest.raises(ValueError, match="unknown window 'year'"):
        Window("year")
    with pytest.raises(ValueError, match="unknown IANA time zone 'Nowhere/Town'"):
        Window("day", "Nowhere/Town")
    with pytest.raises(ValueError, match="unknown window"):
        window_bounds("year", zone("UTC"), 0)


ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Asia/Kolkata",
    "America/Santiago",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Pacific/Apia",
    "Pacific/Chatham",
    "Africa/Casablanca",
    "Antarctica/Troll",
]
INSTANTS = st.integers(min_value=at("1900-01-01T00:00:00+00:00"), max_value=at("2100-01-01T00:00:00+00:00"))
CALENDAR = {
    "day": lambda d: d.date(),
    "week": lambda d: d.date() - timedelta(days=d.weekday()),
    "month": lambda d: (d.year, d.month),
}


@settings(max_examples=300, deadline=None)
@given(
    t=INSTANTS, kind=st.sampled_from([k for k in WINDOW_KINDS if k != "lifetime"]), tz=st.sampled_from(ZONES)
)
def test_windows_partition_time(t: int, kind: str, tz: str) -> None:
    info = zone(tz)
    start, end = window_bounds(kind, info, t)
    assert end is not None
    assert start <= t < end
    assert window_bounds(kind, info, start) == (start, end)
    assert window_bounds(kind, info, end - 1) == (start, end)
    assert window_bounds(kind, info, end)[0] == end  # the end is the next window's start
    assert window_bounds(kind, info, start - 1)[1] == start
    if kind in CALENDAR:
        key = CALENDAR[kind]
        assert key(datetime.fromtimestamp(start, info)) == key(datetime.fromtimestamp(t, info))
        assert (end - start) <= {"day": 50, "week": 170, "month": 746}[kind] * 3600
    else:
        assert end - start <= {"minute": 60, "hour": 3600}[kind]


@settings(max_examples=100, deadline=None)
@given(t=INSTANTS, tz=st.sampled_from(ZONES))
def test_day_windows_hold_every_instant_of_their_local_date(t: int, tz: str) -> None:
    info = zone(tz)
    start, end = window_bounds("day", info, t)
    assert end is not None
    day = datetime.fromtimestamp(t, info).date()
    assert datetime.fromtimestamp(start, info).date() == day
    assert datetime.fromtimestamp(end - 1, info).date() == day
    assert datetime.fromtimestamp(end, info).date() > day
