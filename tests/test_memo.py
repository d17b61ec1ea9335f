"""The bounded memo helper used on hot paths (store keys, resolved models, rate cards)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bedrock_budget._memo import remember


def test_stores_and_returns_the_value() -> None:
    memo: dict[str, int] = {}
    assert remember(memo, "a", 1, 3) == 1
    assert remember(memo, "b", 2, 3) == 2
    assert memo == {"a": 1, "b": 2}
    assert type(memo) is dict  # a hit stays a plain dict lookup


def test_a_full_memo_is_emptied_before_the_next_entry() -> None:
    memo: dict[int, str] = {}
    for number in range(4):
        remember(memo, number, str(number), 4)
    assert memo == {0: "0", 1: "1", 2: "2", 3: "3"}
    remember(memo, 4, "4", 4)
    assert memo == {4: "4"}


def test_a_bound_of_one_keeps_the_latest_entry() -> None:
    memo: dict[str, str] = {}
    remember(memo, "a", "x", 1)
    remember(memo, "b", "y", 1)
    assert memo == {"b": "y"}


@given(st.lists(st.integers(0, 50)), st.integers(1, 20))
def test_never_holds_more_than_the_bound_and_keeps_the_latest(keys: list[int], bound: int) -> None:
    memo: dict[int, int] = {}
    for position, key in enumerate(keys):
        assert remember(memo, key, position, bound) == position
        assert len(memo) <= bound
        assert memo[key] == position
