"""The README's main command, in a short mode: its summary must agree with the budget store."""

from __future__ import annotations

import json
import urllib.request
import uuid
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from bedrock_budget.cli import main
from bedrock_budget.demo.runner import run_demo
from bedrock_budget.demo.workload import plan
from bedrock_budget.metrics import PrometheusListener
from service_fixtures import free_port, lingering_demo, stop_lingering


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["demo", "--json", "--latency", "0", *args]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, dict)
    return data


def test_demo_summary_matches_the_store(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_cli(capsys, "--calls", "240", "--seed", "7")
    spend = Decimal(str(data["spend_usd"]))
    assert spend > 0
    assert Decimal(str(data["store_spend_usd"])) == spend
    assert int(str(data["blocked"])) > 0
    assert int(str(data["downgraded"])) > 0
    apps = data["apps"]
    assert isinstance(apps, dict)
    assert set(apps) == {"support-chat", "legal-review", "search"}
    assert sum(Decimal(app["spend_usd"]) for app in apps.values()) == spend
    users = data["users"]
    assert isinstance(users, dict)
    assert sum(Decimal(v) for v in users.values()) == spend
    assert apps["support-chat"]["cache_read_tokens"] > 0
    budgets = {b["budget"]: b for b in data["budgets"]}  # type: ignore[attr-defined]
    for status in data["budgets"]:  # type: ignore[attr-defined]
        if status["limit_usd"] is not None and status["budget"] != "support-chat-shadow":
            assert Decimal(status["spent_usd"]) <= Decimal(status["limit_usd"]), status
    assert Decimal(budgets["company-monthly"]["spent_usd"]) == spend


def test_same_seed_same_run(capsys: pytest.CaptureFixture[str]) -> None:
    first = run_cli(capsys, "--calls", "60", "--seed", "3")
    second = run_cli(capsys, "--calls", "60", "--seed", "3")
    assert first == second
    assert plan(60, 3) != plan(60, 4)


def test_demo_on_real_redis_with_metrics(redis_url: str) -> None:
    registry = CollectorRegistry()
    store = f"{redis_url}?prefix=demo-{uuid.uuid4().hex[:8]}:"
    summary = run_demo(
        calls=80, seed=11, store=store, latency=0, extra_listeners=(PrometheusListener(registry=registry),)
    )
    assert summary.store_spend_nanos == summary.tally.spend_nanos
    exported = sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "bedrock_budget_cost_usd"
        for sample in metric.samples
        if sample.name == "bedrock_budget_cost_usd_total"
    )
    assert exported == pytest.approx(float(Decimal(summary.tally.spend_nanos) / 10**9), rel=1e-9)


def test_demo_serves_budget_gauges_and_lingers_after_the_run() -> None:
    """The dashboard's budget panels need ``bedrock_budget_budget_*`` from the demo, and a run shorter
    than a scrape interval needs /metrics to stay up after it: a linger far longer than the test needs,
    ended with Ctrl-C (the linger ending on its own: the test below)."""
    port = free_port()
    with lingering_demo(port, linger=600) as (demo, summary):
        assert demo.poll() is None, "the demo exited instead of lingering"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
        assert demo.poll() is None, "the demo stopped lingering on its own"
        assert stop_lingering(demo) == 0
    spent = {s.labels["budget"]: s.value for s in families["bedrock_budget_budget_spent_usd"].samples}
    limits = {s.labels["budget"]: s.value for s in families["bedrock_budget_budget_limit_usd"].samples}
    assert set(spent) == {b["budget"] for b in summary["budgets"]}
    assert spent["company-monthly"] == pytest.approx(float(summary["spend_usd"]), rel=1e-9)
    assert limits["company-monthly"] == 25.0
    (token_limit,) = families["bedrock_budget_budget_limit_tokens"].samples
    assert (token_limit.labels["budget"], token_limit.value) == ("search-tokens-daily", 400_000)
    ratios = families["bedrock_budget_budget_utilisation_ratio"].samples
    assert {(s.labels["budget"], s.labels["unit"]) for s in ratios if s.value > 0} >= {
        ("company-monthly", "usd"),
        ("search-tokens-daily", "tokens"),
    }
    assert "bedrock_budget_requests" in families


def test_the_linger_ends_on_its_own() -> None:
    with lingering_demo(free_port(), linger=0.5, calls=1) as (demo, _):
        assert demo.wait(timeout=30) == 0


def test_linger_needs_a_metrics_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json", "--calls", "1", "--linger", "5"]) == 2
    assert "--linger keeps /metrics up after the run: it needs --metrics-port" in capsys.readouterr().err
