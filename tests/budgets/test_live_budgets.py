"""Per-value overrides, definitions published in the store (every backend), the process that follows
them, ``wrap(budgets="store")`` and the CLI that publishes and edits them."""

from __future__ import annotations

import json
import logging
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import bedrock_budget as bb
from backends import Backend
from bedrock_budget import stores
from bedrock_budget.alerts.model import Alert
from bedrock_budget.budgets import published
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.live import DefinitionsFollower, StoreBudgets
from bedrock_budget.budgets.loading import parse_budgets_yaml
from bedrock_budget.cli import main
from bedrock_budget.errors import (
    BudgetBlockedError,
    BudgetConfigError,
    ConfigurationError,
    DefinitionsChangedError,
    StoreUnavailableError,
)
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.testing import FakeBedrock
from polling import wait_until

USD = 10**9
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Write one line."}]}]


def per_user(**overrides: Any) -> bb.Budget:
    return bb.Budget("per-user", scope={"user": "*"}, limit_usd="5", overrides=overrides or None)


# --- overrides ---------------------------------------------------------------------------------------------


def test_an_override_raises_or_lowers_one_values_limit_and_no_other() -> None:
    budget = per_user(vip={"limit_usd": "50"}, trial={"limit_usd": "0.5", "limit_tokens": 1000})
    with Ledger(MemoryStore(), [budget]) as ledger:
        ledger.settle(ledger.reserve({"user": "vip"}, "m", None, 20 * USD, {}), 20 * USD, {})
        with pytest.raises(BudgetBlockedError) as refused:
            ledger.reserve({"user": "someone"}, "m", None, 20 * USD, {})
        assert "limit $5" in str(refused.value)
        with pytest.raises(BudgetBlockedError) as refused:
            ledger.reserve({"user": "trial"}, "m", None, USD, {})
        assert "limit $0.5" in str(refused.value)
        assert ledger.read("per-user", {"user": "vip"}).budget.limit_usd == Decimal(50)
        assert ledger.read("per-user", {"user": "someone"}).budget.limit_usd == Decimal(5)


def test_alert_thresholds_follow_the_values_own_limit() -> None:
    alerts: list[Alert] = []
    budget = per_user(vip={"limit_usd": "50"})
    with Ledger(MemoryStore(), [budget], alert_sinks=[alerts.append]) as ledger:
        ledger.settle(ledger.reserve({"user": "vip"}, "m", None, 4 * USD, {}), 4 * USD, {})
        assert alerts == []  # 80% of $5 would have fired here; 8% of $50 does not
        ledger.settle(ledger.reserve({"user": "vip"}, "m", None, 22 * USD, {}), 22 * USD, {})
    assert [(a.threshold, a.limit) for a in alerts] == [(50, Decimal(50))]


def test_overrides_round_trip_and_are_checked() -> None:
    (budget,) = parse_budgets_yaml(
        "budgets:\n  per-user:\n    scope: {user: '*'}\n    limit_usd: 5\n"
        "    overrides:\n      42: {limit_usd: '50.00'}\n      '(none)': {limit_tokens: 10}\n"
    )
    assert set(budget.overrides) == {"42", "(none)"}
    assert bb.Budget(**budget.to_dict()) == budget
    assert budget != budget.replace(overrides={"42": {"limit_usd": "51"}})
    cases = [
        ({"scope": {"app": "chat"}}, "exactly one '*'"),
        ({"scope": {"user": "*", "app": "*"}}, "exactly one '*'"),
        ({"overrides": {"*": {"limit_usd": 1}}}, "names every value"),
        ({"overrides": {"u": {"limit_usd": 1.5}}}, "float"),
        ({"overrides": {"u": {"action": "warn"}}}, "cannot be overridden"),
        ({"overrides": {"u": {}}}, "sets no limit"),
        ({"overrides": ["u"]}, "mapping of value"),
    ]
    for fields, message in cases:
        options: dict[str, Any] = {"scope": {"user": "*"}, "limit_usd": "5", **fields}
        if "overrides" not in fields:
            options["overrides"] = {"u": {"limit_usd": "1"}}
        with pytest.raises(BudgetConfigError, match=message):
            bb.Budget("b", **options)
    per_model = bb.Budget("per-model", model="*", limit_usd="5", overrides={HAIKU: {"limit_usd": "9"}})
    assert per_model.for_values((("model", HAIKU),)).limit_usd == Decimal(9)


# --- definitions in the store ------------------------------------------------------------------------------


@pytest.mark.backends("all")
def test_publishing_is_versioned_and_compare_and_set(backend: Backend) -> None:
    store, other = backend.make(), backend.make()
    assert store.read_definitions() is None
    assert store.definitions_version() == 0
    assert published.publish(store, [per_user()]) == 1
    assert published.publish(other, [per_user(vip={"limit_usd": "9"})], expected_version=1) == 2
    with pytest.raises(DefinitionsChangedError) as changed:
        published.publish(store, [per_user()], expected_version=1)
    assert (changed.value.expected, changed.value.found) == (1, 2)
    found = published.read(store)
    assert found is not None
    assert found.version == 2 == store.definitions_version()
    assert found.budgets == (per_user(vip={"limit_usd": "9"}),)
    # Two edits racing through change() both land, one after the other.
    _, first = published.change(store, lambda bs: [b.replace(limit_usd="6") for b in bs])
    _, second = published.change(other, lambda bs: [published.with_limits(bs[0], "x", {"limit_usd": "1"})])
    final = published.read(store)
    assert (first, second) == (3, 4)
    assert final is not None
    assert final.budgets[0].limit_usd == Decimal(6)
    assert set(final.budgets[0].overrides) == {"vip", "x"}


def test_an_empty_or_unreadable_set_is_refused() -> None:
    store = MemoryStore()
    with pytest.raises(bb.BedrockBudgetError, match="empty"):
        published.publish(store, [])
    store.publish_definitions('{"format": 99, "budgets": []}', now_ms=0)
    with pytest.raises(ConfigurationError, match="format 99"):
        published.read(store)
    store.publish_definitions('{"format": 1, "budgets": [{"name": "x", "limit_usd": "lots"}]}', now_ms=0)
    with pytest.raises(BudgetConfigError, match="version 2"):
        published.read(store)


# --- following them ----------------------------------------------------------------------------------------


def test_a_follower_keeps_the_last_good_set_through_bad_versions_and_outages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    applied: list[tuple[bb.Budget, ...]] = []
    follower = DefinitionsFollower(store, lambda b: applied.append(tuple(b)), refresh_seconds=60)
    with caplog.at_level(logging.WARNING, "bedrock_budget"):
        assert follower.refresh() is False
        assert "no budget definitions are published" in caplog.text
    published.publish(store, [per_user()])
    assert follower.refresh() is True
    assert follower.version == 1
    assert applied == [(per_user(),)]
    assert follower.refresh() is False  # same version: nothing is read again
    store.publish_definitions('{"format": 1, "budgets": "nonsense"}', now_ms=0)
    assert follower.refresh() is False
    assert follower.rejected == 1
    assert len(applied) == 1

    def down() -> int:
        raise StoreUnavailableError("memory://", "gone")

    store.definitions_version = down  # type: ignore[method-assign]
    assert follower.refresh() is False
    assert follower.read_errors == 1
    del store.definitions_version
    published.publish(store, [per_user(vip={"limit_usd": "7"})])
    assert follower.refresh() is True
    assert follower.version == 3


def test_a_change_closes_leases_granted_under_the_old_limit() -> None:
    store = MemoryStore()
    published.publish(store, [bb.Budget("all", limit_usd="100")])
    with Ledger(store, lease_fraction=0.5) as ledger:
        follower = ledger.follow_published(refresh_seconds=60)
        ledger.settle(ledger.reserve({}, "m", None, USD, {}), USD, {})
        assert ledger.leases_live
        published.change(store, lambda bs: [bs[0].replace(limit_usd="2")])
        follower.refresh()
        assert not ledger.leases_live
        with pytest.raises(BudgetBlockedError):
            ledger.reserve({}, "m", None, 2 * USD, {})


def test_wrap_with_budgets_from_the_store(fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:

    store = MemoryStore()
    monkeypatch.setitem(stores._REGISTRY, "bbtest", lambda uri, **options: store)
    published.publish(store, [bb.Budget("all", limit_usd="0.0000001")])
    client = fake.client()
    metered = bb.wrap(client, store="bbtest://", budgets=bb.StoreBudgets(refresh_seconds=60))
    with pytest.raises(BudgetBlockedError):
        metered.converse(modelId=HAIKU, messages=MESSAGES)
    assert fake.request_count == 0
    published.change(store, lambda bs: [bs[0].replace(limit_usd="10")])
    metered.bedrock_budget_meter.guard.ledger._follower.refresh()  # what the thread does each second
    metered.converse(modelId=HAIKU, messages=MESSAGES)
    assert metered.bedrock_budget_meter.guard.ledger.definitions_version == 2
    metered.bedrock_budget_meter.guard.ledger.close()  # its follower must not outlive the test
    with pytest.raises(ConfigurationError, match="give store="):
        bb.wrap(client, budgets="store")
    with pytest.raises(ConfigurationError, match="ledger="):
        bb.wrap(client, ledger=Ledger(store), budgets="store")
    with pytest.raises(ConfigurationError, match="between"):
        StoreBudgets(refresh_seconds=0)


# --- the CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli_args(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    for variable in list(os.environ):
        if variable.startswith("BEDROCK_BUDGET"):
            monkeypatch.delenv(variable)
    if backend.uri is None:
        store = backend.make()
        monkeypatch.setitem(stores._REGISTRY, "bbtest", lambda uri, **options: store)
        return ["--store", "bbtest://"]
    return ["--store", backend.uri, "--prefix", backend.prefix]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.backends("memory", "redis", "cluster")
def test_apply_set_and_show_from_the_cli(
    backend: Backend, cli_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(
        "budgets:\n  per-user: {scope: {user: '*'}, limit_usd: '5.00'}\n  all: {limit_usd: 100}\n"
    )
    code, out, _ = run(capsys, "budgets", "apply", str(path), *cli_args)
    assert code == 0
    assert "published as version 1" in out
    code, out, _ = run(capsys, "budgets", "apply", str(path), *cli_args)
    assert code == 0
    assert "nothing published" in out
    code, out, _ = run(
        capsys, "budgets", "set", "per-user", "--value", "u-17", "--limit-usd", "50", *cli_args
    )
    assert code == 0
    assert "published as version 2" in out
    assert "$50.00" in out
    code, out, _ = run(capsys, "budgets", "show", "per-user", "--value", "u-17", *cli_args, "--json")
    effective = json.loads(out)["effective"]
    assert effective == {
        "value": "u-17",
        "key": "user",
        "limit_usd": "50",
        "limit_tokens": None,
        "limit_requests": None,
        "source": "the override for user=u-17",
    }
    code, out, _ = run(capsys, "budgets", "show", "per-user", "--value", "u-3", *cli_args)
    assert code == 0
    assert "user=u-3: limit $5.00, from the budget's own limit" in out
    code, out, _ = run(
        capsys, "budgets", "set", "per-user", "--value", "u-17", "--remove-override", *cli_args
    )
    assert code == 0
    assert "published as version 3" in out
    # Bad input: one line, exit 2, nothing published.
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets:\n  per-user: {scope: {user: '*'}, limit_usd: lots}\n")
    for args in (
        ("budgets", "apply", str(bad)),
        ("budgets", "set", "all", "--value", "x", "--limit-usd", "1"),
        ("budgets", "set", "nope", "--limit-usd", "1"),
        ("budgets", "set", "per-user", "--value", "u-1", "--limit-usd", "-1"),
        ("budgets", "show", "all", "--value", "x"),
    ):
        code, out, err = run(capsys, *args, *cli_args)
        assert (code, err[:7], err.count("\n")) == (2, "error: ", 1), (args, err)
    code, out, _ = run(capsys, "budgets", "list", *cli_args, "--json")
    assert code == 0
    assert {w["budget"] for w in json.loads(out)["windows"]} == {"per-user", "all"}
    found = published.read(backend.make())
    assert found is not None
    assert found.version == 3


def test_the_admin_api_changes_one_limit_or_override_at_a_time() -> None:
    store = MemoryStore()
    published.publish(store, [per_user(), bb.Budget("all", limit_usd="100")])
    assert published.set_limit(store, "per-user", value="u-17", limit_usd="50") == 2
    assert published.set_limit(store, "all", limit_tokens=5000) == 3
    found = published.read(store)
    assert found is not None
    assert found.budget("per-user").for_values((("user", "u-17"),)).limit_usd == Decimal(50)
    assert found.budget("all").limit_usd == Decimal(100)
    assert found.budget("all").limit_tokens == Decimal(5000)
    assert published.remove_override(store, "per-user", "u-17") == 4
    with pytest.raises(ConfigurationError, match="no override"):
        published.remove_override(store, "per-user", "u-17")
    with pytest.raises(ConfigurationError, match="float"):
        published.set_limit(store, "all", limit_usd=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="no budget named 'nope'"):
        published.set_limit(store, "nope", limit_usd="1")
    assert store.definitions_version() == 4  # refused changes published nothing


class NamedMemoryStore(MemoryStore):
    """A memory store with a name of its own: followers of other stores that the worker process still runs
    (other tests' ledgers) must not blend into the series a test reads."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._own_name = name

    @property
    def name(self) -> str:
        return self._own_name


def health_registry() -> CollectorRegistry:
    from bedrock_budget.metrics.store_health import StoreHealthCollector

    registry = CollectorRegistry()
    registry.register(StoreHealthCollector())
    return registry


def test_the_version_each_process_enforces_is_a_metric() -> None:
    registry = health_registry()
    store = NamedMemoryStore("memory://version-metric")
    published.publish(store, [per_user()])
    ledger = Ledger(store)
    follower = ledger.follow_published(refresh_seconds=60)
    store.publish_definitions('{"format": 1, "budgets": "nonsense"}', now_ms=0)
    follower.refresh()
    text = generate_latest(registry).decode()
    assert 'bedrock_budget_store_definitions_version{store="memory://version-metric"} 1.0' in text
    assert 'bedrock_budget_store_definitions_rejected_total{store="memory://version-metric"} 1.0' in text
    ledger.close()  # stopped: no longer reported
    assert 'version{store="memory://version-metric"}' not in generate_latest(registry).decode()


def test_two_ledgers_on_one_store_report_the_oldest_version_and_keep_their_rejections() -> None:
    registry = health_registry()
    store = NamedMemoryStore("memory://two-ledgers")
    published.publish(store, [per_user()])
    current = Ledger(store)
    current.follow_published(refresh_seconds=60)
    store.publish_definitions('{"format": 1, "budgets": "nonsense"}', now_ms=0)
    late = Ledger(store)  # started after a bad publication: it enforces no published set at all
    late.follow_published(refresh_seconds=60)
    labels = {"store": "memory://two-ledgers"}

    def figures() -> tuple[float | None, float | None]:
        return (
            registry.get_sample_value("bedrock_budget_store_definitions_version", labels),
            registry.get_sample_value("bedrock_budget_store_definitions_rejected_total", labels),
        )

    assert figures() == (0, 1)  # the oldest set any ledger enforces, not the newest
    late.close()
    assert figures() == (1, 1)  # the closed ledger's rejection stays counted
    current.close()
    assert figures() == (None, None)


def test_a_ledger_dropped_without_close_is_not_kept_alive_by_its_follower() -> None:
    import gc
    import weakref

    store = MemoryStore()
    published.publish(store, [per_user()])
    ledger = Ledger(store)
    follower = ledger.follow_published(refresh_seconds=0.05)
    gone = weakref.ref(ledger)
    del ledger
    gc.collect()
    assert gone() is None
    wait_until(lambda: follower._thread is not None and not follower._thread.is_alive(), 5, message="exit")
    assert not follower.running
