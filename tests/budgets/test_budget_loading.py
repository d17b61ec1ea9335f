"""Budgets from YAML, plain data and environment variables."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import (
    Budget,
    budgets_from_data,
    budgets_from_env,
    configured_budgets,
    load_budgets,
    parse_budgets_yaml,
)
from bedrock_budget.errors import BudgetConfigError, ConfigurationError, NoBudgetsError
from bedrock_budget.testing import FakeBedrock

YAML = """
budgets:
  - name: chat-daily
    scope: {app: chat}
    window: day
    timezone: Europe/Berlin
    limit_usd: 25.10
    action: block
  - name: per-user
    scope: {user: "*", tenant: 42}
    window: month
    limit_tokens: 2_000_000
    token_weights: {cache_read: 0.1}
    thresholds: [80, 100]
    action: warn
  - name: cheap
    model_family: anthropic
    limit_usd: "0.000000001"
    action: downgrade
    downgrade_to: amazon.nova-micro-v1:0
"""


def test_yaml_file_gives_the_same_budget_objects(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(YAML, encoding="utf-8")
    budgets = load_budgets(path)
    assert [b.name for b in budgets] == ["chat-daily", "per-user", "cheap"]
    chat, per_user, cheap = budgets
    assert chat == Budget(
        "chat-daily", scope={"app": "chat"}, window="day", timezone="Europe/Berlin", limit_usd="25.10"
    )
    assert chat.limit_usd == Decimal("25.10")  # exact: never went through float
    assert dict(per_user.scope) == {"tenant": "42", "user": "*"}
    assert per_user.limit_milli == 2_000_000_000
    assert per_user.token_weights["cache_read"] == Decimal("0.1")
    assert per_user.thresholds == (80, 100)
    assert per_user.action == "warn"
    assert cheap.limit_nanos == 1
    assert cheap.downgrade_to == "amazon.nova-micro-v1:0"
    assert load_budgets(str(path)) == budgets
    assert load_budgets(io.StringIO(YAML)) == budgets


def test_mapping_form_and_bare_list() -> None:
    by_name = parse_budgets_yaml("a: {limit_usd: 1}\nb: {limit_tokens: 5, window: hour}\n")
    assert [(b.name, b.window.kind) for b in by_name] == [("a", "day"), ("b", "hour")]
    assert [b.name for b in parse_budgets_yaml("- {name: x, limit_usd: 1}")] == ["x"]


EMPTY_DOCUMENTS = [
    "",
    "\n\n",
    "# budgets come later\n",
    "budgets: []\n",
    "budgets:\n",
    "{}\n",
    "[]\n",
    "---\n",
]


@pytest.mark.parametrize("text", EMPTY_DOCUMENTS)
def test_a_file_without_budgets_is_an_error(tmp_path: Path, text: str) -> None:
    # An empty file is a wrong path or a truncated deploy; enforcing nothing because of it would go unseen.
    path = tmp_path / "budgets.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NoBudgetsError, match="defines no budgets") as info:
        load_budgets(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ConfigurationError)
    with pytest.raises(NoBudgetsError, match=r"^<stream> defines no budgets"):
        load_budgets(io.StringIO(text))


@pytest.mark.parametrize("text", ["", "budgets: []"])
def test_wrap_refuses_a_budgets_file_without_budgets(fake: FakeBedrock, tmp_path: Path, text: str) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NoBudgetsError, match=r"budgets\.yaml defines no budgets"):
        bb.wrap(fake.client(), budgets=str(path))


def test_environment_documents_without_budgets_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(NoBudgetsError, match=r"empty\.yaml defines no budgets"):
        budgets_from_env({"BEDROCK_BUDGETS_FILE": str(empty)})
    with pytest.raises(NoBudgetsError, match=r"\$BEDROCK_BUDGETS defines no budgets"):
        budgets_from_env({"BEDROCK_BUDGETS": "budgets: []", "BEDROCK_BUDGET__A": "limit_usd=1"})


def test_configured_budgets_reads_a_file_or_else_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text("- {name: from-file, limit_usd: 1}", encoding="utf-8")
    env = {"BEDROCK_BUDGETS": "[{name: inline, limit_usd: 2}]", "BEDROCK_BUDGET__TEAM": "limit_usd=3"}
    assert [b.name for b in configured_budgets(path, environ=env)] == ["from-file"]
    assert [b.name for b in configured_budgets(environ=env)] == ["inline", "team"]
    with pytest.raises(NoBudgetsError, match="no budgets defined: pass a budgets file") as info:
        configured_budgets(environ={"UNRELATED": "x"})
    for variable in ("BEDROCK_BUDGETS_FILE", "BEDROCK_BUDGETS", "BEDROCK_BUDGET__<NAME>"):
        assert variable in str(info.value)
    assert configured_budgets(environ={}, required=False) == []
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(NoBudgetsError, match=r"empty\.yaml defines no budgets"):
        configured_budgets(empty, environ=env, required=False)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- {name: a, limit_usd: 1, thresholds: [50.5]}", "thresholds: 50.5 is not a whole percentage"),
        ("- {name: a, limit_usd: 1, window: 1.5}", "window: 1.5 is not one of"),
        ("- {name: a, limit_usd: 1, action: 2.0}", "action: 2.0 is not one of"),
        ("- {name: a, limit_usd: 1, timezone: 1.25}", "not 1.25"),
        (
            "- {name: a, limit_usd: 1, scope: [1.5]}",
            "scope: must be a mapping of attribution key to value, not a list",
        ),
        ("- [1.5, 2.5]", "budgets[0]: must be a mapping, not a list"),
        ("x: {name: 1.5, limit_usd: 1}", "differs from its key (1.5)"),
    ],
)
def test_messages_show_numbers_as_written_never_as_python_reprs(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_budgets_yaml(text, source="budgets.yaml")
    message = str(info.value)
    assert fragment in message
    assert "Decimal(" not in message


@pytest.mark.parametrize(
    ("text", "budget", "field", "fragment"),
    [
        ("- {name: a, limit_usd: 1, limt_tokens: 5}", "a", "limt_tokens", "unknown field"),
        ("- {name: a, limit_usd: 1}\n- {name: a, limit_usd: 2}", "a", "name", "more than once"),
        ("- {limit_usd: 1}", None, "budgets[0].name", "required"),
        ("- {name: a, limit_usd: 1, window: year}", "a", "window", "year"),
        ("- {name: a, limit_usd: 1, thresholds: [fifty]}", "a", "thresholds", "whole percentage"),
        ("- 5", None, "budgets[0]", "mapping"),
        ("a: {name: b, limit_usd: 1}", "a", "name", "differs"),
    ],
)
def test_yaml_errors_name_budget_and_field(text: str, budget: str | None, field: str, fragment: str) -> None:
    with pytest.raises(BudgetConfigError) as info:
        parse_budgets_yaml(text, source="budgets.yaml")
    assert (info.value.budget, info.value.field) == (budget, field)
    assert fragment in str(info.value)
    assert "budgets.yaml" in str(info.value)


def test_malformed_files() -> None:
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        parse_budgets_yaml("budgets: [")
    with pytest.raises(ConfigurationError, match="must be a list or a mapping"):
        parse_budgets_yaml("42")
    with pytest.raises(ConfigurationError, match="cannot read budgets file"):
        load_budgets("/nonexistent/budgets.yaml")
    with pytest.raises(ConfigurationError, match="finite"):
        parse_budgets_yaml("- {name: a, limit_usd: .inf}")


def test_budgets_from_data() -> None:
    (budget,) = budgets_from_data({"budgets": [{"name": "a", "limit_usd": Decimal("3"), "thresholds": 90}]})
    assert budget.limit_nanos == 3_000_000_000
    assert budget.thresholds == (90,)
    with pytest.raises(BudgetConfigError, match="float"):
        budgets_from_data([{"name": "a", "limit_usd": 0.5}])


def test_environment(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text("- {name: from-file, limit_usd: 1}", encoding="utf-8")
    env = {
        "BEDROCK_BUDGETS_FILE": str(path),
        "BEDROCK_BUDGETS": '[{"name": "inline", "limit_tokens": 10}]',
        "BEDROCK_BUDGET__CHAT_DAILY": (
            "window=day; limit_usd=25; scope.app=chat; scope.user=*; thresholds=50,90;"
            " token_weights.cache_read=0.1; timezone=Europe/Paris; action=shadow"
        ),
        "UNRELATED": "x",
    }
    budgets = budgets_from_env(env)
    assert [b.name for b in budgets] == ["from-file", "inline", "chat-daily"]
    chat = budgets[2]
    assert dict(chat.scope) == {"app": "chat", "user": "*"}
    assert (chat.limit_nanos, chat.thresholds, chat.action) == (25_000_000_000, (50, 90), "warn")
    assert (chat.timezone, chat.token_weights["cache_read"]) == ("Europe/Paris", Decimal("0.1"))
    assert budgets_from_env({}) == []


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("limit_usd", "BEDROCK_BUDGET__X"),
        ("limit_usd=1;colour=red", "colour"),
        ("limit_usd=1;window.x=day", "window.x"),
        ("limit_usd=abc", "limit_usd"),
    ],
)
def test_environment_errors(value: str, field: str) -> None:
    with pytest.raises(BudgetConfigError) as info:
        budgets_from_env({"BEDROCK_BUDGET__X": value})
    assert (info.value.budget, info.value.field) == ("x", field)


def test_environment_duplicates() -> None:
    with pytest.raises(BudgetConfigError, match="more than once"):
        budgets_from_env({"BEDROCK_BUDGETS": "[{name: a, limit_usd: 1}]", "BEDROCK_BUDGET__A": "limit_usd=2"})


def test_on_expired_hold_is_read_from_yaml_and_the_environment() -> None:
    (charged, default) = parse_budgets_yaml(
        "- {name: hard-cap, limit_usd: 5, on_expired_hold: charge}\n- {name: soft, limit_usd: 5}\n"
    )
    assert charged.on_expired_hold == "charge"
    assert default.on_expired_hold == "release"
    assert charged.to_dict()["on_expired_hold"] == "charge"
    assert "on_expired_hold" not in default.to_dict()
    assert charged != charged.replace(on_expired_hold="release")
    (from_env,) = budgets_from_env({"BEDROCK_BUDGET__CAP": "limit_usd=1;on_expired_hold=charge"})
    assert from_env.on_expired_hold == "charge"
    with pytest.raises(BudgetConfigError, match="on_expired_hold") as raised:
        parse_budgets_yaml("- {name: x, limit_usd: 1, on_expired_hold: forget}")
    assert "'forget' is not one of release, charge" in str(raised.value)
