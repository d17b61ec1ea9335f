"""The README's main command, in a short mode: its summary must agree with the budget store."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from bedrock_budget.cli import main
from bedrock_budget.demo.runner import run_demo
from bedrock_budget.demo.workload import plan
from bedrock_budget.metrics import PrometheusListener


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
