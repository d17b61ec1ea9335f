"""The dashboard, provisioning files and alert rules: consistent with each other and with the metrics."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.metrics import BudgetCollector, BudgetState, PrometheusListener
from bedrock_budget.metrics.top_spenders import TopSpendersCollector
from bedrock_budget.stores.breaker import CircuitBreaker, watch
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.usage import Usage

from .conftest import GRAFANA, make_record, usd, with_budgets

DASHBOARD = GRAFANA / "dashboards" / "bedrock-budget.json"
RULES_DIR = GRAFANA / "prometheus"
METRIC = re.compile(r"\bbedrock_budget_[a-z_]+")


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard()["templating"]["list"]}


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.rules.yml"))


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(r for r in group["rules"] if "alert" in r)
    return rules


class OneBudget:
    def __init__(self, state: BudgetState) -> None:
        self.state = state

    def list_budget_states(self) -> list[BudgetState]:
        return [self.state]


def exported_names() -> set[str]:
    """Every sample name bedrock-budget exports, from a registry that saw every kind of event."""
    registry = CollectorRegistry()
    listener = PrometheusListener(registry)
    usage = Usage(input_tokens=1, output_tokens=1, cache_read_tokens=1, cache_write_tokens=1)
    listener(make_record(usage=usage, time_to_first_token_seconds=0.1, budget_warnings=("b",)))
    listener(make_record(outcome="blocked", blocked_by="b"))
    listener(with_budgets(make_record(downgraded_from="x"), downgraded_by="b"))
    listener(make_record(model="nope", priced=False))
    listener.store_metrics.error("settle")
    listener.store_metrics.journal(depth=1, dropped=1)
    listener.store_metrics.reservation_exceeded("b", count=1, excess_nanos=1)
    listener.store_metrics.renewals(renewed=1, failed=1, overdue=1)
    listener.store_metrics.journal(depth=0, file_errors=1)
    one = usd(1)
    state = BudgetState("b", limit_usd=one, spent_usd=one, limit_tokens=one, spent_tokens=one, resets_at=2e9)
    registry.register(BudgetCollector(OneBudget(state)))
    store = WatchedStore()
    watch(store)
    tracked = MemoryStore()
    ledger = Ledger(tracked, [])
    ledger.settle(ledger.reserve({"user": "u"}, "m", None, 1, {"input": 1}), 1, {"input": 1})
    ledger.close()
    registry.register(TopSpendersCollector(tracked, top=1, cache_seconds=0))
    return {s.name for family in registry.collect() for s in family.samples}


class WatchedStore:
    """What the store health collector reads from a Redis store: a breaker and an eviction count."""

    name = "redis://r:6379/0"

    def __init__(self) -> None:
        self.breaker = CircuitBreaker(lambda: None, name=self.name)

    def evicted_keys(self) -> int:
        return 3


def test_dashboard_uses_the_datasource_variable_everywhere() -> None:
    data = dashboard()
    assert data["__inputs"][0]["name"] == "DS_PROMETHEUS"
    ds = variables()["DS_PROMETHEUS"]
    assert ds["type"] == "datasource"
    assert ds["query"] == "prometheus"
    for panel in panels():
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    for name in ("app", "model", "budget"):
        assert variables()[name]["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert variables()[name]["allValue"] == ".*"


def test_dashboard_has_the_promised_panels() -> None:
    titles = {p["title"] for p in panels()}
    assert {
        "Spend rate",
        "Spend by app",
        "Spend by model",
        "Tokens by type",
        "Cache hit share",
        "Budget utilisation",
        "Time to reset",
        "Blocked, downgraded and warned calls",
        "Request duration percentiles",
        "Unpriced calls",
        "Store errors and journal",
    } <= titles
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_every_query_names_an_exported_metric() -> None:
    names = exported_names()
    queries = [t["expr"] for p in panels() for t in p["targets"]]
    queries += [v["definition"] for v in variables().values() if "definition" in v]
    queries += [r["expr"] for r in alert_rules()]
    for query in queries:
        used = set(METRIC.findall(query))
        assert used, query
        assert used <= names, f"{query}: unknown {used - names}"


def test_readme_describes_every_panel_and_query() -> None:
    readme = (GRAFANA / "README.md").read_text()
    for panel in panels():
        assert f"**{panel['title']}**" in readme
        for target in panel["targets"]:
            assert target["expr"] in readme, target["expr"]
    for rule in alert_rules():
        assert f"`{rule['alert']}`" in readme


def test_provisioning_files() -> None:
    (datasources,) = (GRAFANA / "provisioning" / "datasources").glob("*.yaml")
    (source,) = yaml.safe_load(datasources.read_text())["datasources"]
    assert source["type"] == "prometheus"
    (dashboards,) = (GRAFANA / "provisioning" / "dashboards").glob("*.yaml")
    (provider,) = yaml.safe_load(dashboards.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


def test_alertmanager_example_routes_every_alert_to_a_defined_receiver() -> None:
    config = yaml.safe_load((RULES_DIR / "alertmanager.example.yml").read_text())
    receivers = {r["name"] for r in config["receivers"]}
    routes: list[dict[str, Any]] = []
    pending = [config["route"]]
    while pending:
        route = pending.pop()
        routes.append(route)
        pending.extend(route.get("routes", []))
    assert {r["receiver"] for r in routes if "receiver" in r} <= receivers

    def routed(alert: str) -> bool:
        for route in routes:
            for matcher in route.get("matchers", []):
                name, op, value = re.match(r'(\w+)\s*(=~|=)\s*"(.*)"', matcher).groups()  # type: ignore[union-attr]
                if name == "alertname" and (value == alert if op == "=" else re.fullmatch(value, alert)):
                    return True
        return False

    alerts = {r["alert"] for r in alert_rules()}
    assert all(routed(a) for a in alerts), [a for a in alerts if not routed(a)]
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            assert matcher.split('"')[1] in alerts


@pytest.mark.prometheus
def test_promtool_checks_every_rule_file(promtool: str) -> None:
    files = rule_files()
    assert files
    for path in files:
        result = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_promtool_rule_unit_tests(promtool: str) -> None:
    tests = sorted((RULES_DIR / "tests").glob("*.yaml"))
    assert tests
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, tests)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULES_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_missing_binaries_fail_in_ci_and_outside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from . import conftest

    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr("os.access", lambda path, mode: False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.fail.Exception, match="not installed"):
        conftest.require_binary("prometheus")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not installed"):
        conftest.require_binary("prometheus")
