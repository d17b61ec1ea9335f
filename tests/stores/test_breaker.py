"""The circuit breaker's states on their own (a probe the test controls), its URI options, and what the
store health collector exports for it."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest
from prometheus_client import CollectorRegistry

from bedrock_budget.errors import ConfigurationError, StoreUnavailableError
from bedrock_budget.metrics import StoreHealthCollector
from bedrock_budget.stores import breaker as breakers
from bedrock_budget.stores import from_uri
from bedrock_budget.stores.breaker import CircuitBreaker
from bedrock_budget.stores.redis import RedisClusterStore, RedisStore
from bedrock_budget.stores.redis.node_breakers import NodeBreakers
from polling import wait_until


class Probe:
    """A probe that fails until told the store is back, and can be held mid-flight."""

    def __init__(self) -> None:
        self.up = False
        self.calls = 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self) -> None:
        self.calls += 1
        self.release.wait(10)
        if not self.up:
            raise ConnectionError("still down")


class ManualClock:
    """A breaker clock that moves only when the test advances it: a probe thread waiting for its next probe
    wakes when the time passes its deadline (or its breaker stops), so each probe happens when the test
    says, however slow the machine."""

    def __init__(self) -> None:
        self.now = 0.0
        self._cond = threading.Condition()
        self.waiting = 0  # probe threads waiting for their next probe now
        self.threads: set[int] = set()  # every thread that ever waited

    def monotonic(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        with self._cond:
            deadline = self.now + seconds
            self.waiting += 1
            self.threads.add(threading.get_ident())
            try:
                while self.now < deadline and not stop.is_set():
                    self._cond.wait(0.05)  # real time only to notice ``stop``, which does not notify
            finally:
                self.waiting -= 1
        return stop.is_set()

    def advance(self, seconds: float) -> None:
        with self._cond:
            self.now += seconds
            self._cond.notify_all()

    def next_probe(self, interval: float) -> None:
        """Once the probe thread waits for its next probe, move the time to it."""
        wait_until(
            lambda: self.waiting == 1,
            5,
            message=lambda: f"one probe thread to wait for its next probe ({self.waiting} waiting)",
        )
        self.advance(interval)


def test_closed_open_half_open_closed() -> None:
    probe = Probe()
    clock = ManualClock()
    breaker = CircuitBreaker(probe, name="s", probe_interval=0.5, clock=clock)
    recovered: list[str] = []
    breaker.on_close(lambda: recovered.append(breaker.state))
    breaker.check()  # closed: nothing raised
    breaker.failed("TimeoutError: Timeout reading")
    assert breaker.state == "open"
    started = time.monotonic()
    for _ in range(1000):
        with pytest.raises(
            StoreUnavailableError, match=r"circuit open for 0\.0 s after TimeoutError.*; probing every 0\.5 s"
        ):
            breaker.check()
    assert time.monotonic() - started < 0.5  # 1000 refusals, each without waiting
    assert probe.calls == 0  # refusing probes nothing: only the probe thread does, on its interval
    breaker.failed("another failure")  # already open: no second probe thread, the first reason stays

    clock.next_probe(0.5)  # the first probe fails: open again, with the probe's reason
    wait_until(lambda: breaker.transitions["open"] == 2, 5, message="the first probe to fail")
    assert (probe.calls, breaker.state) == (1, "open")
    with pytest.raises(
        StoreUnavailableError, match=r"circuit open for 0\.5 s after ConnectionError: still down"
    ):
        breaker.check()
    clock.next_probe(0.5)  # and the next one
    wait_until(lambda: breaker.transitions["open"] == 3, 5, message="the second probe to fail")
    assert (probe.calls, breaker.state) == (2, "open")

    probe.release.clear()  # the third probe is held in flight: half-open
    clock.next_probe(0.5)
    wait_until(lambda: breaker.state == "half-open" and probe.calls == 3, 5, message="a probe in flight")
    with pytest.raises(StoreUnavailableError, match=r"circuit open for 1\.5 s"):
        breaker.check()  # calls do not wait for the probe
    probe.up = True
    probe.release.set()
    wait_until(lambda: breaker.state == "closed", 5, message="the circuit to close")
    wait_until(lambda: recovered == ["closed"], 5, message="the listener")
    breaker.check()
    assert breaker.transitions == {"closed": 1, "open": 3, "half-open": 3}
    assert probe.calls == 3
    assert len(clock.threads) == 1  # one probe thread for the whole outage


def test_try_now_probes_in_the_calling_thread() -> None:
    probe = Probe()
    breaker = CircuitBreaker(probe, name="s", probe_interval=60)
    assert breaker.try_now()
    assert probe.calls == 0  # closed: nothing to probe
    breaker.failed("ConnectionError")
    assert not breaker.try_now()
    assert breaker.state == "open"
    probe.up = True
    assert breaker.try_now()
    assert breaker.state == "closed"
    breaker.stop()


def test_a_stopped_breaker_does_not_open() -> None:
    breaker = CircuitBreaker(Probe(), name="s")
    breaker.stop()
    breaker.failed("ConnectionError")
    assert breaker.state == "closed"
    with pytest.raises(ValueError, match="probe_interval must be positive"):
        CircuitBreaker(Probe(), name="s", probe_interval=0)


def test_uri_options() -> None:
    store = from_uri(
        "redis://127.0.0.1:1/0?socket_timeout=0.25&socket_connect_timeout=0.1&probe_interval=0.3&retries=0"
    )
    assert isinstance(store, RedisStore)
    assert store.breaker is not None
    assert store.breaker.probe_interval == 0.3
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.25
    assert kwargs["socket_connect_timeout"] == 0.1
    assert from_uri("redis://127.0.0.1:1/0?breaker=off").breaker is None  # type: ignore[attr-defined]
    assert from_uri("redis://127.0.0.1:1/0", breaker=False).breaker is None  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="breaker must be on or off"):
        from_uri("redis://127.0.0.1:1/0?breaker=sometimes")
    # Nothing listens on port 1: the first operation fails and opens the circuit, the next fails at once.
    with pytest.raises(StoreUnavailableError, match="ConnectionError"):
        store.ping()
    assert store.breaker.state != "closed"
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="circuit open"):
        store.ping()
    assert time.monotonic() - started < 0.05
    store.close()


def test_the_collector_exports_state_transitions_and_no_evictions_while_open() -> None:
    store = from_uri("redis://127.0.0.1:1/0?connect_timeout=0.1&probe_interval=60")
    assert isinstance(store, RedisStore)
    registry = CollectorRegistry()
    registry.register(StoreHealthCollector())
    labels = {"store": store.name, "state": "open"}
    assert registry.get_sample_value("bedrock_budget_store_breaker_state", labels) == 0
    with pytest.raises(StoreUnavailableError):
        store.ping()
    assert registry.get_sample_value("bedrock_budget_store_breaker_state", labels) == 1
    assert registry.get_sample_value("bedrock_budget_store_breaker_transitions_total", labels) == 1
    assert registry.get_sample_value("bedrock_budget_store_evicted_keys_total", {"store": store.name}) is None
    store.close()


class FixedBreaker:
    def __init__(self, state: str, transitions: dict[str, int]) -> None:
        self.state = state
        self.transitions = transitions


class StoreDouble:
    """A watched store whose breaker and evicted-key count the test sets."""

    def __init__(self, name: str, breaker: FixedBreaker | None, evicted: int | None) -> None:
        self.name = name
        self.breaker = breaker
        self._evicted = evicted

    def evicted_keys(self) -> int | None:
        return self._evicted


def series(registry: CollectorRegistry, metric: str, store: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in registry.collect()
        for sample in family.samples
        if sample.name == metric and sample.labels.get("store") == store
    ]


def test_stores_on_one_uri_report_as_one_store() -> None:
    # Two clients wrapped with the same store= make two stores of one name: one series each, never two
    # series with one label set (Prometheus drops such duplicates), whatever order the stores come in.
    name = "redis://same-uri.example:6379/0"
    doubles = [
        StoreDouble(name, FixedBreaker("closed", {"closed": 0, "open": 1, "half-open": 1}), None),
        StoreDouble(name, FixedBreaker("open", {"closed": 0, "open": 2, "half-open": 1}), None),
        StoreDouble(name, None, 7),  # no breaker; the one that can read the server's count
    ]
    for double in doubles:
        breakers.watch(double)
    try:
        registry = CollectorRegistry()
        registry.register(StoreHealthCollector())
        states = series(registry, "bedrock_budget_store_breaker_state", name)
        assert sorted((labels["state"], value) for labels, value in states) == [
            ("closed", 0.0),
            ("half-open", 0.0),
            ("open", 1.0),  # the most open of the three
        ]
        moves = series(registry, "bedrock_budget_store_breaker_transitions_total", name)
        assert sorted((labels["state"], value) for labels, value in moves) == [
            ("closed", 0.0),
            ("half-open", 2.0),
            ("open", 3.0),
        ]
        assert series(registry, "bedrock_budget_store_evicted_keys_total", name) == [({"store": name}, 7.0)]
    finally:
        for double in doubles:
            breakers.unwatch(double)


@pytest.mark.redis
def test_a_closed_store_leaves_the_metrics_and_cannot_hide_an_open_one(redis_url: str) -> None:
    # A closed store that something still holds must not stand in for an open store of the same name: its
    # evicted-key count (None once closed) cached under the name hid the open store's series.
    uri = f"{redis_url}?prefix=bbtest:health:{uuid.uuid4().hex}:"
    closed, live = from_uri(uri), from_uri(uri)
    assert closed.name == live.name
    closed.close()
    registry = CollectorRegistry()
    registry.register(StoreHealthCollector(cache_seconds=60))
    evicted = series(registry, "bedrock_budget_store_evicted_keys_total", live.name)
    assert len(evicted) == 1
    assert evicted[0][1] >= 0
    assert [
        labels["state"]
        for labels, value in series(registry, "bedrock_budget_store_breaker_state", live.name)
        if value
    ] == ["closed"]
    live.close()
    assert series(registry, "bedrock_budget_store_breaker_state", live.name) == []
    del closed  # held until here, as a settle thread still running would hold it


def test_transitions_never_fall_when_a_store_of_the_name_closes() -> None:
    # A sum over the stores present would fall when one closes, and Prometheus would read the next rise
    # as new transitions (or miss real ones): the collector keeps each store's share.
    name = "redis://closing-one.example:6379/0"
    first = StoreDouble(name, FixedBreaker("closed", {"closed": 1, "open": 1, "half-open": 1}), None)
    second = StoreDouble(name, FixedBreaker("closed", {"closed": 3, "open": 3, "half-open": 3}), None)
    registry = CollectorRegistry()
    registry.register(StoreHealthCollector())

    def opened() -> float | None:
        return registry.get_sample_value(
            "bedrock_budget_store_breaker_transitions_total", {"store": name, "state": "open"}
        )

    for double in (first, second):
        breakers.watch(double)
    try:
        assert opened() == 4
        breakers.unwatch(second)
        assert opened() == 4  # closed, not reset
        assert first.breaker is not None
        first.breaker.transitions["open"] = 2
        assert opened() == 5  # one new transition, counted once
        breakers.watch(second)
        assert opened() == 5  # back, with nothing new
    finally:
        for double in (first, second):
            breakers.unwatch(double)


@pytest.mark.cluster
def test_a_cluster_with_a_master_out_of_reach_reads_no_evictions(cluster_url: str) -> None:
    store = from_uri(f"{cluster_url}?probe_interval=60&prefix=bbtest:health:{uuid.uuid4().hex}:")
    assert isinstance(store, RedisClusterStore)
    try:
        assert isinstance(store.evicted_keys(), int)
        master = store._cluster().get_primaries()[0]
        nodes = store.breaker
        assert isinstance(nodes, NodeBreakers)
        nodes.node(master).failed("out of reach")  # what a failed call on that master does
        assert store.evicted_keys() is None  # not asked of every master, the one out of reach included
    finally:
        store.close()


def test_a_child_forked_while_a_scrape_held_the_lock_can_scrape() -> None:
    # A preloading server forks workers while a thread of the parent may be scraping: the child, which has
    # only the forking thread, must not find the collector's lock held for ever.
    collector = StoreHealthCollector()
    holding, release = threading.Event(), threading.Event()

    def scrape_in_progress() -> None:
        with collector._lock:
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=scrape_in_progress)
    thread.start()
    try:
        assert holding.wait(5)
        pid = os.fork()
        if pid == 0:  # the child: exit 0 once its scrape is done, or be killed by the alarm
            code = 1
            try:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)  # not the test runner's timeout handler
                signal.alarm(5)
                double = StoreDouble("redis://forked.example:6379/0", None, 3)  # held: watched weakly
                breakers.watch(double)
                exported = [sample.value for family in collector.collect() for sample in family.samples]
                code = 0 if 3.0 in exported else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status), f"the child's scrape hung (status {status})"
        assert os.WEXITSTATUS(status) == 0
    finally:
        release.set()
        thread.join()
