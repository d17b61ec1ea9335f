"""A real Prometheus scrapes wrapped clients talking to FakeBedrock; every dashboard query must return data
and the budget alert must fire."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry

import bedrock_budget as bb
from bedrock_budget.budgets import Budget
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.metrics import (
    BudgetCollector,
    MetricsServer,
    PrometheusListener,
    StoreBudgetSource,
    start_http_server,
)
from bedrock_budget.metrics.top_spenders import TopSpendersCollector
from bedrock_budget.stores import CounterRef, MemoryStore, Spend, from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec
from bedrock_budget.usage import Usage
from polling import wait_until

from .conftest import (
    GRAFANA,
    HAIKU,
    SONNET,
    Prometheus,
    make_record,
    running_prometheus,
    with_budgets,
)

pytestmark = pytest.mark.prometheus

MESSAGES = [{"role": "user", "content": [{"text": "Say something short."}]}]
BUDGETS = [
    Budget("chat-daily", scope={"app": "chat"}, window="day", limit_usd="10"),
    Budget("search-monthly", scope={"app": "search"}, window="month", limit_usd="1000"),
]
CONCRETE = {"app": "chat", "model": HAIKU, "budget": "chat-daily"}


class Driver(threading.Thread):
    """Keeps traffic flowing while Prometheus scrapes, so rates and quantiles have something to show."""

    def __init__(self, client: Any, listener: PrometheusListener, store: MemoryStore) -> None:
        super().__init__(name="metrics-e2e-driver", daemon=True)
        self.client = client
        self.listener = listener
        self.store = store
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.rounds = 0

    def run(self) -> None:
        try:
            while not self.stop.is_set() and self.rounds < 600:
                self.one_round()
                self.rounds += 1
                self.stop.wait(0.2)
        except BaseException as exc:
            self.errors.append(exc)

    def one_round(self) -> None:
        client = self.client
        for app, model in (("chat", HAIKU), ("search", SONNET), ("batch", HAIKU), ("extra-1", HAIKU)):
            with bb.attribute(app=app):
                client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 64})
        with bb.attribute(app="chat"):
            stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
            for _ in stream:
                pass
            client.converse(modelId="anthropic.claude-nonexistent-v1:0", messages=MESSAGES)
            with contextlib.suppress(ClientError):
                client.converse(modelId="acme.mystery-model-v1:0", messages=MESSAGES)
        # Budget enforcement events, as the budget layer reports them on call records.
        blocked = make_record(
            outcome="blocked", usage=Usage(), priced=False, unpriced=None, blocked_by="chat-daily"
        )
        self.listener(blocked)
        self.listener(with_budgets(make_record(downgraded_from=SONNET), downgraded_by="chat-daily"))
        self.listener(make_record(budget_warnings=("chat-daily",)))
        self.listener.store_metrics.error("settle", "unavailable")
        self.listener.store_metrics.journal(depth=2)
        self.spend_85_percent()

    def spend_85_percent(self) -> None:
        # Charged once per window (the id is per window), so a day boundary during the test is harmless.
        now = time.time()
        budget = BUDGETS[0]
        start, end = budget.window.bounds(now)
        ref = CounterRef(budget.name, (("app", "chat"),), budget.window.kind, budget.timezone, start, end)
        self.store.settle(f"e2e-{start}", [Spend(ref, 8_500_000_000, 0)], now_ms=int(now * 1000), charge=True)


def fast_rules(tmp_path: Path) -> Path:
    """The shipped rules with every ``for:`` removed, so alerts fire on the first evaluation."""
    (source,) = sorted((GRAFANA / "prometheus").glob("*.rules.yml"))
    data = yaml.safe_load(source.read_text())
    for group in data["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule.pop("for", None)
    path = tmp_path / "rules-test.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def metrics_endpoint(fake: FakeBedrock, redis_url: str) -> Iterator[tuple[MetricsServer, Driver]]:
    # A Redis store in the process: its breaker state and the server's evicted keys are exported too.
    redis_store = from_uri(redis_url, prefix=f"bbe2e{time.time_ns()}:")
    redis_store.ping()
    registry = CollectorRegistry()
    listener = PrometheusListener(registry, app_labels=3)
    store = MemoryStore()
    collector = BudgetCollector(StoreBudgetSource(store, BUDGETS), cache_seconds=0.5)
    # Who is spending: the spend ledger's top values, as `serve-metrics --top-spenders` serves them.
    tracker = Ledger(store, [])
    for user, nanos in (("u1", 3_000), ("u2", 5_000)):
        tracker.settle(
            tracker.reserve({"user": user, "app": "chat"}, HAIKU, "anthropic", nanos, {}), nanos, {}
        )
    tracker.close()
    top = TopSpendersCollector(store, top=5, cache_seconds=0.5)
    usage = UsageSpec(input_tokens=120, output_tokens=30, cache_read_tokens=400, cache_write_tokens=60)
    for model in (HAIKU, SONNET, "anthropic.claude-nonexistent-v1:0"):
        fake.set_usage(model, usage)
    fake.set_latency(0.005)
    client = bb.wrap(fake.client(), listeners=[listener])
    driver = Driver(client, listener, store)
    driver.one_round()
    server = start_http_server(0, registry=registry, collectors=[collector, top])
    driver.start()
    try:
        yield server, driver
    finally:
        driver.stop.set()
        driver.join(30)
        server.close()
        store.close()
        redis_store.close()
    assert not driver.is_alive()
    assert not driver.errors, driver.errors


@pytest.fixture
def prometheus(
    prometheus_bin: str, promtool: str, tmp_path: Path, metrics_endpoint: tuple[MetricsServer, Driver]
) -> Iterator[Prometheus]:
    server, _ = metrics_endpoint
    rules = fast_rules(tmp_path)
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {
                        "job_name": "bedrock-budget",
                        "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}],
                    }
                ],
            }
        )
    )
    with running_prometheus(prometheus_bin, config, tmp_path) as instance:
        yield instance


def dashboard_queries() -> list[tuple[str, str]]:
    data = json.loads((GRAFANA / "dashboards" / "bedrock-budget.json").read_text())
    return [(p["title"], t["expr"]) for p in data["panels"] if p["type"] != "row" for t in p["targets"]]


def substitute(expr: str, values: dict[str, str]) -> str:
    expr = expr.replace("$__rate_interval", "15s").replace("$__range", "5m")
    for name, value in values.items():
        expr = expr.replace(f"${name}", value)
    assert "$" not in expr, expr
    return expr


def returns_data(prom: Prometheus, expr: str) -> bool:
    result = prom.query(expr)
    if not result:
        return False
    if "histogram_quantile" in expr or "/" in expr:
        return all(not math.isnan(float(r["value"][1])) for r in result)
    return True


def test_dashboard_queries_and_alerts_against_real_prometheus(prometheus: Prometheus) -> None:
    started = time.monotonic()
    wait_until(
        lambda: bool(prometheus.query('count_over_time(up{job="bedrock-budget"}[1m]) >= 3 and up == 1')),
        30,
        interval=0.5,
        message="three successful scrapes",
    )

    passes = [{"app": ".*", "model": ".*", "budget": ".*"}, CONCRETE]
    pending = {(title, substitute(expr, values)) for values in passes for title, expr in dashboard_queries()}

    def all_return_data() -> bool:
        nonlocal pending
        pending = {(title, expr) for title, expr in pending if not returns_data(prometheus, expr)}
        return not pending

    wait_until(
        all_return_data,
        30,
        interval=1,
        message=lambda: (
            "dashboard queries to return data; without:\n"
            + "\n".join(f"{t}: {e}" for t, e in sorted(pending))
        ),
    )

    data = json.loads((GRAFANA / "dashboards" / "bedrock-budget.json").read_text())
    for variable in data["templating"]["list"]:
        if variable["type"] != "query":
            continue
        metric, label = variable["definition"].removeprefix("label_values(").rstrip(")").split(", ")
        values = prometheus.get(f"/api/v1/label/{label}/values", **{"match[]": metric})["data"]
        assert CONCRETE[variable["name"]] in values, (variable["name"], values)

    def firing() -> dict[str, list[dict[str, str]]]:
        alerts = prometheus.get("/api/v1/alerts")["data"]["alerts"]
        found: dict[str, list[dict[str, str]]] = {}
        for alert in alerts:
            if alert["state"] == "firing":
                found.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
        return found

    wanted = {"BedrockBudgetNearLimit", "BedrockBudgetUnpricedCalls", "BedrockBudgetStoreErrors"}
    wait_until(lambda: wanted <= set(firing()), 30, interval=0.5, message=f"alerts {sorted(wanted)} to fire")
    alerts = firing()
    assert alerts["BedrockBudgetNearLimit"] == [
        {"alertname": "BedrockBudgetNearLimit", "budget": "chat-daily", "unit": "usd", "severity": "warning"}
    ]
    assert "BedrockBudgetExhausted" not in alerts
    assert {a["model"] for a in alerts["BedrockBudgetUnpricedCalls"]} == {"other"}
    assert time.monotonic() - started < 50
