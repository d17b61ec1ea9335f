"""Budget gauges as observable instruments, read from a memory store when the SDK collects."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal

import pytest
from prometheus_client import CollectorRegistry

import bedrock_budget as bb
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.metrics import BudgetCollector, BudgetState, StoreBudgetSource
from bedrock_budget.otel import BudgetGauges
from bedrock_budget.stores import CounterRef, MemoryStore, Spend
from bedrock_budget.testing import FakeBedrock, UsageSpec

from .conftest import HAIKU, MESSAGES, Collected, Point, where

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC).timestamp()
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


def charge(store: MemoryStore, counter: CounterRef, dollars: str, tokens: int = 0) -> None:
    nanos = int(Decimal(dollars) * 10**9)
    rid = f"r-{counter.tag}-{dollars}-{tokens}"
    store.settle(rid, [Spend(counter, nanos, tokens * 1000)], now_ms=int(NOW * 1000), charge=True)


class CountingSource:
    def __init__(self, states: list[BudgetState], fail: bool = False) -> None:
        self.reads = 0
        self.states = states
        self.fail = fail

    def list_budget_states(self) -> list[BudgetState]:
        self.reads += 1
        if self.fail:
            raise ConnectionError("redis is down")
        return self.states


UNITS = {
    "bedrock_budget.budget.limit": "USD",
    "bedrock_budget.budget.spent": "USD",
    "bedrock_budget.budget.reserved": "USD",
    "bedrock_budget.budget.tokens.limit": "{token}",
    "bedrock_budget.budget.tokens.spent": "{token}",
    "bedrock_budget.budget.tokens.reserved": "{token}",
    "bedrock_budget.budget.utilization": "1",
    "bedrock_budget.budget.time_to_reset": "s",
    "bedrock_budget.budget.counters": "{counter}",
    "bedrock_budget.store.up": "1",
}


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
    return store


def value(points: list[Point], name: str, budget: str, **attributes: str) -> float | None:
    found = where([p for p in points if p.name == name], bedrock_budget__budget=budget, **attributes)
    assert len(found) <= 1
    return found[0].value if found else None


def utilization(points: list[Point], budget: str, unit: str) -> float | None:
    return value(points, "bedrock_budget.budget.utilization", budget, bedrock_budget__budget__unit=unit)


def test_budget_gauges_from_the_store(collected: Collected, store: MemoryStore) -> None:
    source = StoreBudgetSource(store, BUDGETS, clock=lambda: NOW)
    BudgetGauges(source, collected.provider, clock=lambda: NOW)
    points = collected.points()
    assert {p.name: p.unit for p in points} == UNITS
    [up] = [p for p in points if p.name == "bedrock_budget.store.up"]
    assert up.value == 1

    assert value(points, "bedrock_budget.budget.limit", "chat-daily") == 10
    assert value(points, "bedrock_budget.budget.spent", "chat-daily") == 8.5
    assert value(points, "bedrock_budget.budget.reserved", "chat-daily") == 0
    assert utilization(points, "chat-daily", "usd") == 0.85
    assert value(points, "bedrock_budget.budget.time_to_reset", "chat-daily") == 12 * 3600
    # A wildcard budget: its most used scope value per unit, and how many values hold spend.
    assert value(points, "bedrock_budget.budget.spent", "per-user") == 4
    assert value(points, "bedrock_budget.budget.tokens.spent", "per-user") == 900
    assert value(points, "bedrock_budget.budget.tokens.limit", "per-user") == 1000
    assert utilization(points, "per-user", "tokens") == 0.9
    assert value(points, "bedrock_budget.budget.counters", "per-user") == 3
    month_end = datetime(2025, 4, 1, tzinfo=UTC).timestamp()
    assert value(points, "bedrock_budget.budget.time_to_reset", "per-user") == month_end - NOW
    # Lifetime: no reset time. No spend yet: the limit is still there.
    assert value(points, "bedrock_budget.budget.time_to_reset", "forever") is None
    assert value(points, "bedrock_budget.budget.tokens.limit", "idle") == 50000
    assert value(points, "bedrock_budget.budget.spent", "idle") is None
    # Only the budget name, never a scope value, is an attribute.
    for point in points:
        assert set(point.attributes) <= {"bedrock_budget.budget", "bedrock_budget.budget.unit"}


def test_the_same_values_as_the_prometheus_collector(collected: Collected, store: MemoryStore) -> None:
    source = StoreBudgetSource(store, BUDGETS, clock=lambda: NOW)
    BudgetGauges(source, collected.provider, clock=lambda: NOW)
    registry = CollectorRegistry()
    registry.register(BudgetCollector(source, clock=lambda: NOW))
    prometheus_names = {
        "bedrock_budget.budget.limit": "bedrock_budget_budget_limit_usd",
        "bedrock_budget.budget.spent": "bedrock_budget_budget_spent_usd",
        "bedrock_budget.budget.tokens.spent": "bedrock_budget_budget_spent_tokens",
        "bedrock_budget.budget.time_to_reset": "bedrock_budget_budget_reset_seconds",
        "bedrock_budget.budget.counters": "bedrock_budget_budget_counters",
    }
    compared = 0
    for point in collected.points():
        name = prometheus_names.get(point.name)
        if name is None:
            continue
        budget = str(point.attributes["bedrock_budget.budget"])
        assert registry.get_sample_value(name, {"budget": budget}) == point.value, (name, budget)
        compared += 1
    assert compared >= 12


def test_one_collection_reads_the_store_once() -> None:
    source = CountingSource([BudgetState("b", limit_usd=Decimal(1))])
    with Collected.new() as collected:
        BudgetGauges(source, collected.provider, monotonic=lambda: 0.0)
        assert value(collected.points(), "bedrock_budget.budget.limit", "b") == 1
    assert source.reads == 1


def test_a_failing_store_reports_down_and_no_budgets(caplog: pytest.LogCaptureFixture) -> None:
    source = CountingSource([BudgetState("b", limit_usd=Decimal(1))], fail=True)
    now = [0.0]
    with Collected.new() as collected, caplog.at_level(logging.WARNING, logger="bedrock_budget.metrics"):
        BudgetGauges(source, collected.provider, cache_seconds=1, monotonic=lambda: now[0])
        points = collected.points()
        assert [(p.name, p.value) for p in points] == [("bedrock_budget.store.up", 0.0)]
        source.fail = False
        now[0] += 2
        points = collected.points()
        assert value(points, "bedrock_budget.budget.limit", "b") == 1
    assert "redis is down" in caplog.text


def test_spend_of_real_calls_shows_in_the_gauges(
    collected: Collected, fake: FakeBedrock, records: list[bb.CallRecord]
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=1234, output_tokens=321))
    budgets = [Budget("chat-daily", scope={"app": "chat"}, window="day", limit_usd="5")]
    store = MemoryStore()
    client = bb.wrap(fake.client(), listeners=[records], ledger=Ledger(store, budgets))
    for _ in range(3):
        with bb.attribute(app="chat"):
            client.converse(modelId=HAIKU, messages=MESSAGES)
    BudgetGauges(StoreBudgetSource(store, budgets), collected.provider)
    points = collected.points()
    # The store keeps nano-dollars, each call rounded up.
    nano = Decimal("1e-9")
    spent = sum((r.cost_usd.quantize(nano, rounding=ROUND_CEILING) for r in records), Decimal(0))
    assert spent > 0
    assert value(points, "bedrock_budget.budget.spent", "chat-daily") == float(spent)
    assert value(
        points, "bedrock_budget.budget.utilization", "chat-daily", bedrock_budget__budget__unit="usd"
    ) == (float(spent / 5))
    assert value(points, "bedrock_budget.budget.reserved", "chat-daily") == 0
