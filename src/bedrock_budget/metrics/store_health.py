"""Store health read at scrape time: each Redis store's circuit breaker and the keys its server evicted.

Series (labelled ``store``: the store's name, its URI without the password, so a handful at most). The
open stores of one name report together: two clients wrapped with the same ``store=`` URI, say (a store
built from a redis-py client is named after the client's class unless given ``name=``, so give stores on
different servers different names). A closed store is no longer reported.

- ``bedrock_budget_store_breaker_state{store, state}``: 1 for the breaker's current state (``closed``,
  ``open``, ``half-open``; the most open one of a name's stores), 0 for the others (see
  :mod:`bedrock_budget.stores.breaker`).
- ``bedrock_budget_store_breaker_transitions_total{store, state}``: transitions into each state of the
  name's stores, as read at each scrape (a store's last transitions before it closed may be missed); it
  never falls when a store closes.
- ``bedrock_budget_store_definitions_version{store}``: the version of the budgets published in the store
  that this process enforces (``budgets="store"``; 0 while none is published; the oldest one when several
  ledgers follow the store), and ``bedrock_budget_store_definitions_rejected_total{store}``: published
  versions its ledgers could not read and skipped. Only while the process follows a store's budgets. A
  fleet whose processes report different versions for minutes has a process that cannot read the store
  or the published set.
- ``bedrock_budget_store_evicted_keys_total{store}``: the server's ``evicted_keys`` (``INFO stats``; summed
  over a cluster's masters). Any growth means budget counters may have been evicted and restarted at $0.
  Read at most every ``cache_seconds`` (a reading that failed too) and never while the breaker is open (a
  Cluster store's: while any master's is not closed).

:class:`StoreHealthCollector` is registered with the store metrics (``PrometheusListener``). State is per
process: in multiprocess mode a collector is only exported where it is registered.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Final, TypeVar

from bedrock_budget._registries import renew_after_fork
from bedrock_budget.stores.breaker import STATES, StoreHealth, watched

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PREFIX: Final = "bedrock_budget_"
_Key = TypeVar("_Key", bound=str)
_OPENNESS: Final = {"closed": 0, "half-open": 1, "open": 2}


class StoreHealthCollector:
    """A prometheus_client collector over every live Redis store of the process (see the module docstring)."""

    def __init__(
        self, *, cache_seconds: float = 5.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._evicted: dict[str, tuple[float, int | None]] = {}
        self._transitions = RunningTotals()
        self._rejected = RunningTotals()
        renew_after_fork(self)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # collect() reads stores; nothing to check at registration

    def _evicted_keys(self, name: str, read: Callable[[], int | None]) -> int | None:
        # The server is asked without the lock held: it may take a socket timeout to answer, and a lock
        # held that long would stall other scrapes (and be inherited held by a child forked meanwhile).
        with self._lock:
            now = self._monotonic()
            cached = self._evicted.get(name)
            if cached is not None and now - cached[0] < self.cache_seconds:
                return cached[1]
        value = read()
        with self._lock:
            self._evicted[name] = (now, value)
        return value

    def _after_fork(self) -> None:
        # A parent's thread may have held the lock at the fork; the child has only the forking thread.
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        state = GaugeMetricFamily(
            PREFIX + "store_breaker_state",
            "1 for the budget store circuit breaker's current state (closed, open, half-open).",
            labels=["store", "state"],
        )
        transitions = CounterMetricFamily(
            PREFIX + "store_breaker_transitions",
            "Budget store circuit breaker transitions into each state.",
            labels=["store", "state"],
        )
        evicted = CounterMetricFamily(
            PREFIX + "store_evicted_keys",
            "Keys the budget store's server evicted since it started (an evicted budget counter restarts "
            "at $0).",
            labels=["store"],
        )
        for store_name, stores in _by_name(watched()):
            # Stores of one name (two clients wrapped with the same store=) report as one: the most open
            # breaker, and their transitions together. Two series with one label set would be dropped.
            found = [store.breaker for store in stores if store.breaker is not None]
            if found:
                current = max((breaker.state for breaker in found), key=_OPENNESS.__getitem__)
                with self._lock:
                    for breaker in found:
                        self._transitions.add(store_name, breaker, breaker.transitions)
                    moved = {name: self._transitions.total(store_name, name) for name in STATES}
                for name in STATES:
                    state.add_metric([store_name, name], 1.0 if name == current else 0.0)
                    transitions.add_metric([store_name, name], float(moved[name]))
            count = self._evicted_keys(store_name, partial(_first_evicted_keys, stores))
            if count is not None:
                evicted.add_metric([store_name], float(count))
        yield state
        yield transitions
        yield evicted
        yield from self._definitions()

    def _definitions(self) -> Iterator[Metric]:
        """The published budget definitions this process follows, per store (nothing when it follows
        none)."""
        from bedrock_budget.budgets.live import followers

        running = followers()
        if not running:
            return
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        version = GaugeMetricFamily(
            PREFIX + "store_definitions_version",
            "Version of the budgets published in the store that this process enforces (0: none "
            "published; the oldest, when several ledgers follow the store).",
            labels=["store"],
        )
        rejected = CounterMetricFamily(
            PREFIX + "store_definitions_rejected",
            "Published budget definitions this process could not read and skipped (it keeps the last good "
            "set).",
            labels=["store"],
        )
        oldest: dict[str, int] = {}
        with self._lock:
            for follower in running:
                name = follower.store.name
                oldest[name] = min(oldest.get(name, follower.version), follower.version)
                self._rejected.add(name, follower, {"rejected": follower.rejected})
            skipped = {name: self._rejected.total(name, "rejected") for name in oldest}
        for name in sorted(oldest):
            version.add_metric([name], float(oldest[name]))
            rejected.add_metric([name], float(skipped[name]))
        yield version
        yield rejected


class RunningTotals:
    """Counters per name that only go up, over sources that come and go (the breakers of a name's stores,
    the followers of a store): each source's growth since it was last read is added to its name's total,
    and a source that is gone keeps what it added. A sum over the sources present would fall when one
    goes, and Prometheus would take the next rise for new events. Not thread-safe: the caller locks."""

    def __init__(self) -> None:
        self._last: weakref.WeakKeyDictionary[object, dict[str, int]] = weakref.WeakKeyDictionary()
        self._totals: dict[tuple[str, str], int] = {}

    def add(self, name: str, source: object, counts: Mapping[_Key, int]) -> None:
        last = self._last.setdefault(source, {})
        for key, value in counts.items():
            grown = value - last.get(key, 0)
            if grown > 0:
                self._totals[name, key] = self._totals.get((name, key), 0) + grown
            last[key] = value

    def total(self, name: str, key: str) -> int:
        return self._totals.get((name, key), 0)


def _by_name(stores: list[StoreHealth]) -> list[tuple[str, list[StoreHealth]]]:
    grouped: dict[str, list[StoreHealth]] = {}
    for store in stores:
        grouped.setdefault(store.name, []).append(store)
    return sorted(grouped.items())


def _first_evicted_keys(stores: list[StoreHealth]) -> int | None:
    """The server's count, from the first of the stores on it that can read it now (one whose breaker is
    open cannot)."""
    for store in stores:
        count = store.evicted_keys()
        if count is not None:
            return count
    return None
