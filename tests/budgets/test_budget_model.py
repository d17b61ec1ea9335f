"""Budget definitions: validation with field-named errors, matching, weights."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bedrock_budget.budgets import Budget
from bedrock_budget.errors import BudgetConfigError, ConfigurationError


def test_the_documented_example() -> None:
    budget = Budget(
        name="chat-daily",
        scope={"app": "chat"},
        window="day",
        timezone="UTC",
        limit_usd="25.00",
        action="block",
    )
    assert budget.name == "chat-daily"
    assert dict(budget.scope) == {"app": "chat"}
    assert budget.limit_usd == Decimal("25.00")
    assert budget.limit_nanos == 25_000_000_000
    assert budget.limit_tokens is None
    assert budget.limit_milli is None
    assert budget.thresholds == (50, 80, 100)
    assert (budget.window.kind, budget.timezone, budget.action) == ("day", "UTC", "block")


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"limit_usd": 0.1}, "limit_usd", "float"),
        ({"limit_usd": "abc"}, "limit_usd", "not a number"),
        ({"limit_usd": "-1"}, "limit_usd", "negative"),
        ({"limit_usd": "0.0000000001"}, "limit_usd", "9 decimal places"),
        ({"limit_usd": "NaN"}, "limit_usd", "finite"),
        ({"limit_usd": True}, "limit_usd", "bool"),
        ({"limit_usd": "1e30"}, "limit_usd", "too large"),
        ({"limit_tokens": "1.0001"}, "limit_tokens", "3 decimal places"),
        ({}, "limit_usd", "needs limit_usd, limit_tokens or limit_requests"),
        ({"limit_usd": "1", "window": "fortnight"}, "window", "fortnight"),
        ({"limit_usd": "1", "timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"limit_usd": "1", "action": "explode"}, "action", "explode"),
        ({"limit_usd": "1", "action": "downgrade"}, "downgrade_to", "cheaper model"),
        ({"limit_usd": "1", "downgrade_to": "m"}, "downgrade_to", "only applies"),
        ({"limit_usd": "1", "thresholds": [50, 50]}, "thresholds", "duplicates"),
        ({"limit_usd": "1", "thresholds": [0]}, "thresholds", "between 1 and 1000"),
        ({"limit_usd": "1", "thresholds": [50.5]}, "thresholds", "whole percentage"),
        ({"limit_usd": "1", "token_weights": {"cache_reads": "0.1"}}, "token_weights.cache_reads", "unknown"),
        ({"limit_usd": "1", "token_weights": {"cache_read": 0.1}}, "token_weights.cache_read", "float"),
        ({"limit_usd": "1", "token_weights": {"input": "0.0001"}}, "token_weights.input", "decimal places"),
        ({"limit_usd": "1", "scope": {"1bad": "x"}}, "scope.1bad", "keys"),
        ({"limit_usd": "1", "scope": {"app": ""}}, "scope.app", "non-empty"),
        ({"limit_usd": "1", "scope": {"app": "a\nb"}}, "scope.app", "control"),
        ({"limit_usd": "1", "scope": ["app"]}, "scope", "mapping"),
        ({"limit_usd": "1", "model": "a", "scope": {"model": "b"}}, "model", "both"),
    ],
)
def test_invalid_definitions_name_the_field(kwargs: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(BudgetConfigError) as info:
        Budget("b1", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert info.value.budget == "b1"
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"budget 'b1': {field}: ")
    assert isinstance(info.value, ConfigurationError)


@pytest.mark.parametrize("name", ["", " x", "a b", "x" * 129, "{x}", None])
def test_invalid_names(name: object) -> None:
    with pytest.raises(BudgetConfigError) as info:
        Budget(name, limit_usd="1")  # type: ignore[arg-type]
    assert info.value.field == "name"


def test_limits_accept_exact_types() -> None:
    assert Budget("a", limit_usd=5).limit_nanos == 5_000_000_000
    assert Budget("a", limit_usd=Decimal("0.000000001")).limit_nanos == 1
    assert Budget("a", limit_tokens="1000.5").limit_milli == 1_000_500
    assert Budget("a", limit_usd="0").limit_nanos == 0


def test_float_message_suggests_a_string() -> None:
    with pytest.raises(BudgetConfigError, match=r"pass a string \('0.1'\)"):
        Budget("a", limit_usd=0.1)  # type: ignore[arg-type]


def test_budgets_are_immutable_and_replace_keeps_the_rest() -> None:
    budget = Budget("a", scope={"app": "x"}, limit_usd="10", thresholds=(80,), action="warn")
    with pytest.raises(AttributeError):
        budget.name = "b"  # type: ignore[misc]
    raised = budget.replace(limit_usd="20")
    assert raised.limit_nanos == 20_000_000_000
    assert (raised.name, dict(raised.scope), raised.thresholds, raised.action) == (
        "a",
        {"app": "x"},
        (80,),
        "warn",
    )
    assert raised != budget
    assert budget.replace() == budget
    assert Budget("a", limit_usd="25.0") == Budget("a", limit_usd="25.00")
    assert len({Budget("a", limit_usd="25.0"), Budget("a", limit_usd=25)}) == 1


def test_shadow_is_an_alias_of_warn() -> None:
    assert Budget("a", limit_usd="1", action="shadow").action == "warn"


def test_weights_default_to_one_and_weigh_in_milli_tokens() -> None:
    budget = Budget("a", limit_tokens=100, token_weights={"cache_read": "0.1", "output": "4"})
    assert dict(budget.token_weights) == {
        "input": Decimal(1),
        "output": Decimal(4),
        "cache_read": Decimal("0.1"),
        "cache_write": Decimal(1),
    }
    assert budget.weigh({"input": 10, "output": 5, "cache_read": 1234, "cache_write": 2, "image": 3}) == (
        10_000 + 20_000 + 123_400 + 2_000 + 3_000
    )


def test_matching_exact_wildcard_model_and_family() -> None:
    app = Budget("app", scope={"app": "chat"}, limit_usd="1")
    users = Budget("users", scope={"user": "*"}, limit_usd="1")
    both = Budget("both", scope={"user": "*", "team": "red"}, limit_usd="1")
    model = Budget("model", model="anthropic.claude-3-haiku", limit_usd="1")
    family = Budget("family", model_family="anthropic", scope={"app": "chat"}, limit_usd="1")
    per_model = Budget("per-model", model="*", limit_usd="1")
    glob = Budget("global", limit_usd="1")
    call = {"user": "u-17", "app": "chat", "team": "red"}
    assert app.match(call, "m", None) == (("app", "chat"),)
    assert users.match(call, "m", None) == (("user", "u-17"),)
    assert both.match(call, "m", None) == (("team", "red"), ("user", "u-17"))
    assert model.match(call, "anthropic.claude-3-haiku", "anthropic") == (
        ("model", "anthropic.claude-3-haiku"),
    )
    assert model.match(call, "amazon.nova", "nova") is None
    assert family.match(call, "x", "anthropic") == (("app", "chat"), ("model_family", "anthropic"))
    assert family.match(call, "x", None) is None
    assert per_model.match({}, "m1", None) == (("model", "m1"),)
    assert glob.match({}, "m", None) == ()
    assert glob.is_global
    assert app.match({"app": "search"}, "m", None) is None
    # No user: pooled under "(none)" by default; covered not at all only when the budget says "skip".
    assert users.match({"app": "chat"}, "m", None) == (("user", "(none)"),)
    assert users.match({"user": ""}, "m", None) == (("user", "(none)"),)
    skipping = users.replace(on_unattributed="skip")
    assert skipping.match({"app": "chat"}, "m", None) is None
    assert skipping.match({"user": ""}, "m", None) is None
    assert skipping.match(call, "m", None) == (("user", "u-17"),)
    # A fixed value is never satisfied by a missing key, whatever the policy.
    assert app.match({}, "m", None) is None


def test_scope_model_keys_are_aliases() -> None:
    budget = Budget("a", scope={"app": "x", "model": "m1", "model_family": "f"}, limit_usd="1")
    assert (dict(budget.scope), budget.model, budget.model_family) == ({"app": "x"}, "m1", "f")


def test_round_trip_through_data() -> None:
    budget = Budget(
        "a",
        scope={"tenant": "t1"},
        window="month",
        timezone="America/New_York",
        limit_usd="12.5",
        limit_tokens="1000",
        token_weights={"cache_read": "0.1"},
        action="downgrade",
        downgrade_to="amazon.nova-micro-v1:0",
        thresholds=(90, 50),
        model_family="anthropic",
    )
    data = budget.to_dict()
    assert data["thresholds"] == [50, 90]
    assert data["token_weights"] == {"cache_read": "0.1"}
    name = data.pop("name")
    assert Budget(name, **data) == budget
    assert "downgrade_to='amazon.nova-micro-v1:0'" in repr(budget)
