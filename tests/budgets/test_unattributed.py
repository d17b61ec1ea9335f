"""Calls lacking a key a "*" budget needs: pooled under "(none)" by default, refused or skipped when the
budget says so, and counted whatever the policy — through the ledger and through real boto3 calls."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import bedrock_budget as bb
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.loading import budgets_from_env, load_budgets
from bedrock_budget.errors import BudgetBlockedError, BudgetConfigError, UnattributedCallError
from bedrock_budget.metrics import PrometheusListener
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records

USD = 1_000_000_000
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Write one line."}]}]


def per_user(policy: str | None = None, **extra: Any) -> bb.Budget:
    options = {} if policy is None else {"on_unattributed": policy}
    return bb.Budget("per-user", scope={"user": "*", **extra}, limit_usd="5", **options)


def test_the_default_pools_unattributed_calls_under_one_capped_value() -> None:
    with MemoryStore() as store:
        ledger = Ledger(store, [per_user()])
        for _ in range(2):
            ledger.settle(ledger.reserve({"app": "batch"}, "m", None, 2 * USD, {}), 2 * USD, {})
        with pytest.raises(BudgetBlockedError) as refused:
            ledger.reserve({}, "m", None, 2 * USD, {})  # a third $2 would take "(none)" past $5
        assert refused.value.scope == {"user": "(none)"}
        assert ledger.read("per-user", {"user": "(none)"}).spent_usd == Decimal(4)
        # An attributed user still has the whole limit of its own.
        ledger.settle(ledger.reserve({"user": "u1"}, "m", None, 5 * USD, {}), 5 * USD, {})
        assert ledger.unattributed.totals() == {("per-user", "pool"): 3}
        ledger.close()


def test_refuse_raises_before_anything_is_held() -> None:
    with MemoryStore() as store:
        ledger = Ledger(store, [per_user("refuse"), bb.Budget("company", limit_usd="100")])
        with pytest.raises(UnattributedCallError) as refused:
            ledger.reserve({"app": "batch"}, "m", None, USD, {})
        error = refused.value
        assert isinstance(error, bb.BudgetExceededError)  # callers catching refusals catch this too
        assert error.missing == ("user",)
        assert error.budget == "per-user"
        assert error.scope == {"user": "(none)"}
        assert error.requested == Decimal(1)
        assert "bb.attribute(user=...)" in str(error)
        # Nothing was held, against the refusing budget or the others.
        assert ledger.read("company").reserved_usd == 0
        assert ledger.read("per-user", {"user": "(none)"}).reserved_usd == 0
        # Empty counts as missing; an attributed call goes through.
        with pytest.raises(UnattributedCallError):
            ledger.reserve({"user": ""}, "m", None, USD, {})
        ledger.settle(ledger.reserve({"user": "u1"}, "m", None, USD, {}), USD, {})
        assert ledger.read("company").spent_usd == Decimal(1)
        assert ledger.unattributed.totals() == {("per-user", "refuse"): 2}
        ledger.close()


def test_skip_leaves_the_call_uncapped_but_counted() -> None:
    with MemoryStore() as store:
        ledger = Ledger(store, [per_user("skip")])
        reservation = ledger.reserve({}, "m", None, 100 * USD, {})
        assert reservation.budgets == ()
        ledger.settle(reservation, 100 * USD, {})
        assert ledger.status("per-user") == []
        assert ledger.unattributed.totals() == {("per-user", "skip"): 1}
        ledger.close()


@pytest.mark.parametrize("policy", ["pool", "refuse", "skip"])
def test_only_calls_the_rest_of_the_scope_covers_are_counted(policy: str) -> None:
    scope = {"app": "chat", "user": "*"}
    budget = bb.Budget("chat-users", scope=scope, limit_usd="5", on_unattributed=policy)
    with MemoryStore() as store:
        ledger = Ledger(store, [budget])
        # Another app's call without a user is none of this budget's business, whatever its policy.
        ledger.settle(ledger.reserve({"app": "search"}, "m", None, USD, {}), USD, {})
        assert ledger.unattributed.totals() == {}
        if policy == "refuse":
            with pytest.raises(UnattributedCallError):
                ledger.reserve({"app": "chat"}, "m", None, USD, {})
        else:
            ledger.settle(ledger.reserve({"app": "chat"}, "m", None, USD, {}), USD, {})
        assert ledger.unattributed.totals() == {("chat-users", policy): 1}
        # Counts survive a change of budgets: they only ever grow.
        ledger.set_budgets([budget.replace(limit_usd="6")])
        assert ledger.unattributed.totals() == {("chat-users", policy): 1}
        ledger.close()


def test_the_policy_is_read_from_yaml_and_the_environment_and_checked() -> None:
    (from_yaml,) = load_budgets(
        io.StringIO("- name: u\n  scope: {user: '*'}\n  limit_usd: 1\n  on_unattributed: refuse\n")
    )
    assert from_yaml.on_unattributed == "refuse"
    (from_env,) = budgets_from_env({"BEDROCK_BUDGET__U": "limit_usd=1;scope.user=*;on_unattributed=skip"})
    assert from_env.on_unattributed == "skip"
    assert per_user().on_unattributed == "pool"
    assert "on_unattributed" not in per_user().to_dict()  # the default is not spelled out
    assert per_user("skip").to_dict()["on_unattributed"] == "skip"
    assert per_user("skip") != per_user()
    with pytest.raises(BudgetConfigError) as bad:
        per_user("ignore")
    assert bad.value.field == "on_unattributed"
    assert "pool, refuse, skip" in str(bad.value)


def converse(client: Any) -> Any:
    return client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 50})


def unattributed_counted(registry: CollectorRegistry, policy: str) -> float | None:
    return registry.get_sample_value(
        "bedrock_budget_unattributed_calls_total", {"budget": "per-user", "policy": policy}
    )


def test_forgotten_attribution_no_longer_escapes_a_per_user_cap(fake: FakeBedrock) -> None:
    """The case from the field: a small per-user budget and 20 calls made without bb.attribute (each costs
    $0.000056; the 20 together would cost $0.00112)."""
    fake.set_usage(HAIKU, UsageSpec(input_tokens=20, output_tokens=10))
    limit = Decimal("0.001")
    registry = CollectorRegistry()
    records = Records()
    client = bb.wrap(
        fake.client(),
        budgets=[bb.Budget("per-user", scope={"user": "*"}, limit_usd=limit)],
        listeners=[records, PrometheusListener(registry=registry)],
    )
    admitted, refused = 0, []
    for _ in range(20):
        try:
            converse(client)
            admitted += 1
        except bb.BudgetExceededError as exc:
            refused.append(exc.scope)
    assert 0 < admitted < 20
    assert refused == [{"user": "(none)"}] * (20 - admitted)
    assert fake.request_count == admitted
    spent = sum((r.cost_usd for r in records if r.outcome == "ok"), Decimal(0))
    assert 0 < spent <= limit
    assert unattributed_counted(registry, "pool") == 20


def test_refused_unattributed_calls_never_reach_bedrock_and_are_recorded(fake: FakeBedrock) -> None:
    registry = CollectorRegistry()
    records = Records()
    client = bb.wrap(
        fake.client(),
        budgets=[per_user("refuse")],
        listeners=[records, PrometheusListener(registry=registry)],
    )
    for _ in range(3):
        with pytest.raises(UnattributedCallError):
            converse(client)
    assert fake.request_count == 0
    assert [(r.outcome, r.blocked_by, r.error_code) for r in records] == [
        ("blocked", "per-user", "UnattributedCallError")
    ] * 3
    assert unattributed_counted(registry, "refuse") == 3
    with bb.attribute(user="u1"):
        converse(client)
    assert fake.request_count == 1
    assert unattributed_counted(registry, "refuse") == 3
