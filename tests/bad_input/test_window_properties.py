"""Window maths over every IANA zone this machine knows (tests/budgets covers a hand-picked list): windows
never overlap and leave no gap, the cached ``Window.bounds`` agrees with a fresh computation whatever order
time is asked in, and the reset time a refusal or a status reports is exactly the next window's start —
where the spend really does start again from zero."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.budgets.windows import WINDOW_KINDS, Window, window_bounds, zone

NANOS = 10**9


def _loadable(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:
        return False
    return True


ZONES = sorted(name for name in available_timezones() if _loadable(name))
KINDS = [kind for kind in WINDOW_KINDS if kind != "lifetime"]
INSTANTS = st.integers(
    min_value=int(datetime(1900, 1, 1, tzinfo=UTC).timestamp()),
    max_value=int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()),
)
RECENT = st.integers(
    min_value=int(datetime(1971, 1, 1, tzinfo=UTC).timestamp()),
    max_value=int(datetime(2099, 1, 1, tzinfo=UTC).timestamp()),
)


@settings(max_examples=400, deadline=None)
@given(t=INSTANTS, kind=st.sampled_from(KINDS), name=st.sampled_from(ZONES))
def test_windows_in_any_zone_partition_time(t: int, kind: str, name: str) -> None:
    tz = zone(name)
    start, end = window_bounds(kind, tz, t)
    assert end is not None
    assert start <= t < end
    # Neighbours touch: the window after starts at this end, the one before ends at this start.
    after = window_bounds(kind, tz, end)
    before = window_bounds(kind, tz, start - 1)
    assert after[0] == end
    assert before[1] == start
    assert window_bounds(kind, tz, end - 1) == (start, end)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    name=st.sampled_from(ZONES),
    times=st.lists(st.floats(min_value=0, max_value=4.1e9, allow_nan=False), min_size=1, max_size=30),
)
def test_cached_bounds_agree_with_a_fresh_computation(kind: str, name: str, times: list[float]) -> None:
    window = Window(kind, name)
    for t in times:
        assert window.bounds(t) == window_bounds(kind, window.tz, int(t // 1))


@settings(max_examples=60, deadline=None)
@given(t=RECENT, kind=st.sampled_from(KINDS), name=st.sampled_from(ZONES))
def test_reset_time_is_the_next_window_start(t: int, kind: str, name: str) -> None:
    now = [t + 0.25]
    budget = bb.Budget("cap", window=kind, timezone=name, limit_usd="1")
    with Ledger("memory://", [budget], clock=lambda: now[0]) as ledger:
        start, end = window_bounds(kind, zone(name), t)
        assert end is not None
        ledger.settle(ledger.reserve({}, "m", None, NANOS, {}), NANOS, {})
        with pytest.raises(bb.BudgetExceededError) as refused:
            ledger.reserve({}, "m", None, 1, {})
        resets_at = refused.value.resets_at
        assert resets_at is not None
        assert resets_at.timestamp() == end
        assert resets_at.utcoffset() == datetime.fromtimestamp(end, ZoneInfo(name)).utcoffset()
        status = ledger.read("cap")
        assert status.resets_at == resets_at
        assert status.window_start is not None
        assert status.window_start.timestamp() == start

        now[0] = end - 0.001  # the last instant of the window: still spent
        assert ledger.read("cap").spent_usd == 1
        now[0] = end  # the reset: a fresh window with nothing spent
        assert ledger.read("cap").spent_usd == 0
        ledger.release(ledger.reserve({}, "m", None, NANOS, {}))
