"""Budget gauges read from the store at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from bedrock_budget.budgets import Budget
from bedrock_budget.metrics import BudgetCollector, BudgetState, LedgerBudgetSource, StoreBudgetSource
from bedrock_budget.stores import CounterRef, MemoryStore, Spend

from .conftest import sample, series, usd

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC).timestamp()
NANOS = 10**9

BUDGETS = [
    Budget("chat-daily", scope={"app": "chat"}, window="day", limit_usd="10"),
    Budget("per-user", scope={"user": "*"}, window="month", limit_usd="5", limit_tokens="1000"),
    Budget("forever", window="lifetime", limit_usd="100"),
    Budget("idle", window="hour", limit_tokens="50000"),
]


def ref(budget: Budget, scope: dict[str, str], at: float = NOW) -> CounterRef:
    start, end = budget.window.bounds(at)
    return CounterRef(
        budget.name, tuple(sorted(scope.items())), budget.window.kind, budget.timezone, start, end
    )


def charge(store: MemoryStore, counter: CounterRef, dollars: str, tokens: int = 0, rid: str = "") -> None:
    nanos = int(usd(dollars) * NANOS)
    rid = rid or f"r-{counter.tag}-{dollars}-{tokens}"
    store.settle(rid, [Spend(counter, nanos, tokens * 1000)], now_ms=int(NOW * 1000), charge=True)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    chat, per_user, forever, _ = BUDGETS
    charge(store, ref(chat, {"app": "chat"}), "8.5")
    charge(store, ref(chat, {"app": "chat"}, at=NOW - 86400), "9.9")  # yesterday: not this window
    charge(store, ref(per_user, {"user": "a"}), "1")
    charge(store, ref(per_user, {"user": "b"}), "4", tokens=200)
    charge(store, ref(per_user, {"user": "c"}), "0.5", tokens=900)
    charge(store, ref(forever, {}), "12")
    legacy = Budget("legacy", window="day", limit_usd="1")
    charge(store, ref(legacy, {}), "2")
    return store


def collect(collector: BudgetCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def test_budget_gauges_from_the_store(store: MemoryStore) -> None:
    source = StoreBudgetSource(store, BUDGETS, clock=lambda: NOW)
    registry = collect(BudgetCollector(source, clock=lambda: NOW))

    assert sample(registry, "bedrock_budget_store_up") == 1
    assert sample(registry, "bedrock_budget_budget_limit_usd", budget="chat-daily") == 10
    assert sample(registry, "bedrock_budget_budget_spent_usd", budget="chat-daily") == 8.5
    assert sample(registry, "bedrock_budget_budget_reserved_usd", budget="chat-daily") == 0
    assert (
        sample(registry, "bedrock_budget_budget_utilisation_ratio", budget="chat-daily", unit="usd") == 0.85
    )
    assert sample(registry, "bedrock_budget_budget_reset_seconds", budget="chat-daily") == 12 * 3600
    assert sample(registry, "bedrock_budget_budget_counters", budget="chat-daily") == 1

    # Wildcard budget: the worst-off scope value per unit, and how many there are.
    assert sample(registry, "bedrock_budget_budget_spent_usd", budget="per-user") == 4
    assert sample(registry, "bedrock_budget_budget_utilisation_ratio", budget="per-user", unit="usd") == 0.8
    assert sample(registry, "bedrock_budget_budget_spent_tokens", budget="per-user") == 900
    assert (
        sample(registry, "bedrock_budget_budget_utilisation_ratio", budget="per-user", unit="tokens") == 0.9
    )
    assert sample(registry, "bedrock_budget_budget_counters", budget="per-user") == 3
    month_end = datetime(2025, 4, 1, tzinfo=UTC).timestamp()
    assert sample(registry, "bedrock_budget_budget_reset_seconds", budget="per-user") == month_end - NOW

    # Lifetime: no reset; a budget without spend is still listed with its limit.
    assert registry.get_sample_value("bedrock_budget_budget_reset_seconds", {"budget": "forever"}) is None
    assert sample(registry, "bedrock_budget_budget_utilisation_ratio", budget="forever", unit="usd") == 0.12
    assert sample(registry, "bedrock_budget_budget_limit_tokens", budget="idle") == 50000
    assert sample(registry, "bedrock_budget_budget_utilisation_ratio", budget="idle", unit="tokens") == 0
    assert sample(registry, "bedrock_budget_budget_counters", budget="idle") == 0

    # A budget only the store knows: amounts and reset, no limit.
    assert sample(registry, "bedrock_budget_budget_spent_usd", budget="legacy") == 2
    assert registry.get_sample_value("bedrock_budget_budget_limit_usd", {"budget": "legacy"}) is None

    labels = {frozenset(s) for s in series(registry, "bedrock_budget_budget_spent_usd")}
    assert labels == {frozenset({"budget"})}, "no scope values (user ids) in labels"


def test_undefined_budgets_can_be_left_out(store: MemoryStore) -> None:
    source = StoreBudgetSource(store, BUDGETS, include_undefined=False, clock=lambda: NOW)
    assert "legacy" not in {s.budget for s in source.list_budget_states()}


def test_counters_of_a_changed_window_are_ignored(store: MemoryStore) -> None:
    weekly = [Budget("chat-daily", scope={"app": "chat"}, window="week", limit_usd="10")]
    (state,) = [
        s
        for s in StoreBudgetSource(store, weekly, clock=lambda: NOW).list_budget_states()
        if s.budget == "chat-daily"
    ]
    assert state.spent_usd == 0
    assert state.counters == 0


class CountingSource:
    def __init__(self, states: Iterable[BudgetState] = (), fail: bool = False) -> None:
        self.reads = 0
        self.states = list(states)
        self.fail = fail

    def list_budget_states(self) -> list[BudgetState]:
        self.reads += 1
        if self.fail:
            raise ConnectionError("redis is down")
        return self.states


def test_reads_are_cached_briefly() -> None:
    source = CountingSource([BudgetState("b", limit_usd=usd(1))])
    now = [100.0]
    collector = BudgetCollector(source, cache_seconds=5, monotonic=lambda: now[0])
    registry = collect(collector)
    for _ in range(5):
        registry.get_sample_value("bedrock_budget_budget_limit_usd", {"budget": "b"})
    assert source.reads == 1
    now[0] += 5.1
    assert sample(registry, "bedrock_budget_budget_limit_usd", budget="b") == 1
    assert source.reads == 2


def test_registering_does_not_read_the_store() -> None:
    source = CountingSource()
    CollectorRegistry(auto_describe=True).register(BudgetCollector(source))
    assert source.reads == 0


def test_a_failing_store_reports_down_and_no_budgets(caplog: pytest.LogCaptureFixture) -> None:
    source = CountingSource([BudgetState("b", limit_usd=usd(1))], fail=True)
    now = [0.0]
    registry = collect(BudgetCollector(source, cache_seconds=1, monotonic=lambda: now[0]))
    with caplog.at_level(logging.WARNING, logger="bedrock_budget.metrics"):
        for _ in range(3):
            now[0] += 2
            assert sample(registry, "bedrock_budget_store_up") == 0
            assert registry.get_sample_value("bedrock_budget_budget_limit_usd", {"budget": "b"}) is None
    # Only this logger's records: caplog also takes what other tests' threads still log meanwhile.
    messages = [r.message for r in caplog.records if r.name == "bedrock_budget.metrics"]
    assert len(messages) == 1  # three failed reads, one warning
    assert "redis is down" in messages[0]
    source.fail = False
    now[0] += 2
    assert sample(registry, "bedrock_budget_store_up") == 1
    assert sample(registry, "bedrock_budget_budget_limit_usd", budget="b") == 1


def test_budget_count_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    source = CountingSource([BudgetState(f"b{i:03}", limit_usd=usd(1)) for i in range(50)])
    with caplog.at_level(logging.WARNING, logger="bedrock_budget.metrics"):
        registry = collect(BudgetCollector(source, max_budgets=10))
        assert len(series(registry, "bedrock_budget_budget_limit_usd")) == 10
    assert "max_budgets" in caplog.text


def test_zero_limit_reads_as_exhausted() -> None:
    registry = collect(BudgetCollector(CountingSource([BudgetState("frozen", limit_usd=usd(0))])))
    assert sample(registry, "bedrock_budget_budget_utilisation_ratio", budget="frozen", unit="usd") == 1


def test_source_must_list_budget_states() -> None:
    with pytest.raises(TypeError, match="list_budget_states"):
        BudgetCollector(object())  # type: ignore[arg-type]


def test_ledger_source() -> None:
    from bedrock_budget.budgets import Ledger

    budgets = [
        Budget("chat-daily", scope={"app": "chat"}, window="day", limit_usd="10"),
        Budget("per-user", scope={"user": "*"}, window="month", limit_usd="5"),
    ]
    with Ledger(MemoryStore(), budgets, clock=lambda: NOW) as ledger:
        for user, nanos in (("a", 2 * NANOS), ("b", 3 * NANOS)):
            reservation = ledger.reserve({"app": "chat", "user": user}, "m", None, nanos, {"input": 10})
            ledger.settle(reservation, nanos, {"input": 10})
        held = ledger.reserve({"app": "chat", "user": "a"}, "m", None, NANOS // 2, {"input": 1})
        registry = collect(BudgetCollector(LedgerBudgetSource(ledger), clock=lambda: NOW))
        assert sample(registry, "bedrock_budget_budget_spent_usd", budget="chat-daily") == 5
        assert sample(registry, "bedrock_budget_budget_reserved_usd", budget="chat-daily") == 0.5
        assert sample(registry, "bedrock_budget_budget_spent_usd", budget="per-user") == 3
        assert sample(registry, "bedrock_budget_budget_counters", budget="per-user") == 2
        assert sample(registry, "bedrock_budget_budget_reset_seconds", budget="chat-daily") == 12 * 3600
        ledger.release(held)
