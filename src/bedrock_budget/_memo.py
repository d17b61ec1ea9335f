"""Bounded memo dicts for hot paths.

A memo is a plain ``dict`` and a hit is one ``dict.get``: no lock, no wrapper and no recency bookkeeping
(on Python 3.11 a dict subclass or a bound-method attribute makes every hit about half again slower).
Only storing goes through :func:`remember`, which empties a full memo before adding to it. Emptying it all
at once, rather than evicting the least recently used entry, suits what these memos hold: a small working
set (the counters of the current windows, the models in use) that refills with one miss per entry and only
reaches the bound when something feeds in endless distinct keys.

:func:`remember` takes no lock: callers that need one hold their own. Without one, two threads storing at
once can at worst lose an entry, which costs a later miss.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, max_entries: int) -> V:
    """Store ``value`` under ``key`` and return it; a memo already holding ``max_entries`` entries is
    emptied first, so it never holds more."""
    if len(memo) >= max_entries:
        memo.clear()
    memo[key] = value
    return value
