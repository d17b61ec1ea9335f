"""Who is spending, as bounded gauges: the top spenders of each tracked key today, read from the spend
ledger — in process over a memory store, and from `serve-metrics --top-spenders` over HTTP on Redis, fed by
real boto3 calls through wrapped clients with no budgets."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import bedrock_budget as bb
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.metrics.top_spenders import TopSpendersCollector
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.testing import FakeBedrock, UsageSpec
from polling import wait_until
from service_fixtures import free_port

from .conftest import LAUNCH, scrape

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
USD = 1_000_000_000


def track(store: MemoryStore, spends: dict[tuple[str, str], int]) -> None:
    """Settle one call per (user, app) at the given nano-dollars through a ledger without budgets."""
    ledger = Ledger(store, [])
    for (user, app), nanos in spends.items():
        reservation = ledger.reserve({"user": user, "app": app}, HAIKU, "anthropic", nanos, {"input": 10})
        ledger.settle(reservation, nanos, {"input": 10})
    ledger.close()


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["key"], s.labels["rank"], s.labels["value"]): s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == name
    }


def test_the_top_values_of_each_key_by_rank_and_no_more() -> None:
    with MemoryStore() as store:
        track(store, {("u1", "chat"): 3 * USD, ("u2", "chat"): 5 * USD, ("u3", "search"): 1 * USD})
        registry = CollectorRegistry()
        registry.register(TopSpendersCollector(store, top=2, keys=("user", "app"), cache_seconds=0))
        usd = samples(registry, "bedrock_budget_top_spend_usd")
        assert usd == {
            ("user", "1", "u2"): 5.0,
            ("user", "2", "u1"): 3.0,  # u3 is third: not served
            ("app", "1", "chat"): 8.0,
            ("app", "2", "search"): 1.0,
        }
        # The same figures the spend API gives, exactly.
        for row in bb.spend(store, by="user", top=2):
            assert Decimal(str(usd[("user", str(["u2", "u1"].index(row.values[0]) + 1), row.values[0])])) == (
                row.cost_usd
            )
        calls = samples(registry, "bedrock_budget_top_spend_calls")
        assert calls[("app", "1", "chat")] == 2
        assert registry.get_sample_value("bedrock_budget_top_spenders_errors_total") == 0


def test_a_store_that_fails_drops_the_series_not_the_scrape() -> None:
    class Failing(MemoryStore):
        def track_members(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("store down")

    with Failing() as store:
        registry = CollectorRegistry()
        collector = TopSpendersCollector(store, top=3, cache_seconds=0)
        registry.register(collector)
        scraped = {s.name: s.value for metric in registry.collect() for s in metric.samples}
        assert "bedrock_budget_top_spend_usd" not in scraped
        assert scraped["bedrock_budget_top_spenders_errors_total"] == 1 == collector.errors
    with pytest.raises(ValueError, match="top must be at least 1"):
        TopSpendersCollector(MemoryStore(), top=0)


def test_reads_are_cached_between_scrapes() -> None:
    now = [100.0]
    with MemoryStore() as store:
        collector = TopSpendersCollector(store, top=3, keys=("user",), cache_seconds=5, clock=lambda: now[0])
        registry = CollectorRegistry()
        registry.register(collector)
        assert samples(registry, "bedrock_budget_top_spend_usd") == {}
        track(store, {("u1", "chat"): USD})
        now[0] += 4  # within the cache: the earlier (empty) read is served
        assert samples(registry, "bedrock_budget_top_spend_usd") == {}
        now[0] += 2
        assert samples(registry, "bedrock_budget_top_spend_usd") == {("user", "1", "u1"): 1.0}


def test_serve_metrics_serves_who_is_spending_from_a_fleet_without_budgets(
    fake: FakeBedrock, redis_url: str
) -> None:
    prefix = f"bbtop{time.time_ns()}:"
    store = f"{redis_url}?prefix={prefix}"
    fake.set_usage(HAIKU, UsageSpec(input_tokens=100, output_tokens=10))
    client = bb.wrap(fake.client(), store=store)  # no budgets: the spend ledger alone
    for user, count in (("alice", 3), ("bob", 1), ("carol", 2)):
        with bb.attribute(user=user, app="chat"):
            for _ in range(count):
                client.converse(modelId=HAIKU, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    port = free_port()
    args = [
        "serve-metrics",
        "--store",
        store,
        "--port",
        str(port),
        "--top-spenders",
        "2",
        "--top-keys",
        "user",
    ]
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, *args], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        text = wait_until(lambda: scrape(url), 30, message="serve-metrics to answer")
        per_call = bb.default_price_table().price(HAIKU, bb.Usage(input_tokens=100, output_tokens=10))
        alice = float(per_call.total_usd * 3)
        assert f'bedrock_budget_top_spend_usd{{key="user",rank="1",value="alice"}} {alice}' in text
        assert 'bedrock_budget_top_spend_calls{key="user",rank="2",value="carol"} 2.0' in text
        assert 'value="bob"' not in text  # third: beyond --top-spenders 2
    finally:
        proc.terminate()
        proc.wait(timeout=15)
