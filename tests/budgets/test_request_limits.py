"""Request-count limits in the budget layer: definitions, loading, the ledger's refusals, releases, alerts,
status, leases and the journal, and calls through the wrapper against the fake Bedrock."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bedrock_budget as bb
from backends import Backend
from bedrock_budget.alerts import Alert
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.budgets.durable import decode, encode
from bedrock_budget.budgets.loading import budgets_from_env, parse_budgets_yaml
from bedrock_budget.budgets.published import read as read_published
from bedrock_budget.cli import main
from bedrock_budget.errors import BudgetBlockedError, BudgetConfigError, DowngradeRequiredError
from bedrock_budget.metrics.collector import BudgetCollector, LedgerBudgetSource
from bedrock_budget.stores import SettleRequest, Spend
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.testing import FakeBedrock

from .conftest import FakeClock

CALL = {"user": "u-1", "app": "chat"}
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "One line."}]}]


def reserve(ledger: Ledger, model: str = "m") -> Any:
    return ledger.reserve(CALL, model, None, 1000, {"output": 10})


# -- definitions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "abc", "1e3", Decimal("2.5"), 10**12 + 1, [5]])
def test_a_request_limit_is_a_whole_number_of_calls(bad: object) -> None:
    with pytest.raises(BudgetConfigError) as error:
        Budget("rpm", window="minute", limit_requests=bad)  # type: ignore[arg-type]
    assert error.value.field == "limit_requests"


def test_a_request_limit_stands_alone_and_round_trips() -> None:
    budget = Budget("rpm", window="minute", limit_requests="600")
    assert budget.limit_requests == 600
    assert (budget.limit_usd, budget.limit_tokens) == (None, None)
    assert budget.to_dict()["limit_requests"] == 600
    assert Budget("rpm", **{k: v for k, v in budget.to_dict().items() if k != "name"}) == budget
    assert budget.replace(limit_requests=601) != budget
    assert "limit_requests" not in Budget("usd", limit_usd="1").to_dict()


def test_yaml_and_environment_take_request_limits() -> None:
    (from_yaml,) = parse_budgets_yaml("budgets:\n  - {name: rph, window: hour, limit_requests: 1200}\n")
    assert from_yaml.limit_requests == 1200
    (from_env,) = budgets_from_env({"BEDROCK_BUDGET__CHAT_RPD": "window=day;limit_requests=5000"})
    assert (from_env.name, from_env.limit_requests) == ("chat-rpd", 5000)
    with pytest.raises(BudgetConfigError):
        parse_budgets_yaml("budgets:\n  - {name: rph, window: hour, limit_requests: 12.5}\n")


# -- the ledger -------------------------------------------------------------------------------------------


def test_the_limit_refuses_the_call_past_it_and_a_release_gives_its_request_back(clock: FakeClock) -> None:
    ledger = Ledger(MemoryStore(), [Budget("rpm", window="minute", limit_requests=3)], clock=clock)
    held = [reserve(ledger) for _ in range(3)]
    with pytest.raises(BudgetBlockedError) as refused:
        reserve(ledger)
    error = refused.value
    assert (error.unit, error.limit, error.spent, error.reserved, error.requested) == ("requests", 3, 0, 3, 1)
    assert "3 requests per minute" in str(error)
    ledger.release(held[0])
    ledger.settle(held[1], 500, {"output": 5})
    status = ledger.read("rpm")
    assert (status.spent_requests, status.reserved_requests) == (1, 1)
    assert status.utilisation_percent == Decimal("33.33")
    fourth = reserve(ledger)  # the released request came back
    with pytest.raises(BudgetBlockedError):
        reserve(ledger)
    ledger.settle(fourth, 10**9, {"output": 10**6})  # settling never changes the count, whatever it costs
    ledger.settle(held[2], 0, {})
    assert (ledger.read("rpm").spent_requests, ledger.read("rpm").reserved_requests) == (3, 0)
    clock.advance(60)  # a new minute: a new window
    reserve(ledger)
    assert ledger.read("rpm").reserved_requests == 1


def test_clamp_cannot_fit_a_request_limit_so_it_refuses_like_block() -> None:
    budget = Budget("rpm", window="minute", limit_requests=1, limit_usd="1", action="clamp")
    ledger = Ledger(MemoryStore(), [budget])
    reserve(ledger)
    with pytest.raises(BudgetBlockedError) as refused:
        reserve(ledger)
    assert type(refused.value) is BudgetBlockedError
    assert refused.value.unit == "requests"


def test_warn_budgets_report_and_downgrade_budgets_name_their_model() -> None:
    ledger = Ledger(
        MemoryStore(),
        [
            Budget("shadow-rpm", window="minute", limit_requests=1, action="warn"),
            Budget("big-rpm", model="big", window="minute", limit_requests=1, action="downgrade",
                   downgrade_to="small"),
        ],
    )  # fmt: skip
    reserve(ledger, "big")
    with pytest.raises(DowngradeRequiredError) as downgrade:
        reserve(ledger, "big")
    assert downgrade.value.downgrade_to == "small"
    small = reserve(ledger, "small")  # the downgraded call is outside the big model's limit
    assert [w.unit for w in small.warnings] == ["requests"]
    assert ledger.read("shadow-rpm").reserved_requests == 2


def test_request_thresholds_alert_once_and_the_limit_alerts_when_it_starts_refusing() -> None:
    received: list[Alert] = []
    budget = Budget("rpd", window="day", limit_requests=4, thresholds=(50, 100))
    ledger = Ledger(MemoryStore(), [budget], alert_sinks=[received.append])
    for _ in range(2):
        ledger.settle(reserve(ledger), 10, {})
    assert [(a.unit, a.threshold, a.refused) for a in received] == [("requests", 50, False)]
    assert received[0].message.endswith("(2 requests of 4 requests; threshold 50%)")
    held = [reserve(ledger) for _ in range(2)]
    for _ in range(2):
        with pytest.raises(BudgetBlockedError):
            reserve(ledger)
    assert [(a.unit, a.threshold, a.refused) for a in received[1:]] == [("requests", 100, True)]
    for reservation in held:
        ledger.settle(reservation, 10, {})
    assert len(received) == 2  # 100% was already reached by the refusal


def test_budgets_without_a_request_limit_count_no_requests() -> None:
    ledger = Ledger(MemoryStore(), [Budget("usd", limit_usd="10")])
    ledger.settle(reserve(ledger), 10, {})
    status = ledger.read("usd")
    assert (status.spent_requests, status.reserved_requests, status.limit_requests) == (0, 0, None)
    assert status.as_dict()["limit_requests"] is None


def test_leases_admit_calls_locally_within_the_request_limit() -> None:
    store = MemoryStore()
    budget = Budget("rpd", window="day", limit_requests=20)
    ledger = Ledger(store, [budget], lease_fraction=0.25, lease_seconds=60)
    admitted = 0
    for n in range(30):
        try:
            reservation = reserve(ledger)
        except BudgetBlockedError:
            continue
        admitted += 1
        if n == 0:
            ledger.release(reservation)  # given back to the lease, which admits another call with it
        else:
            ledger.settle(reservation, 10, {})
    assert ledger.leases_taken >= 1
    ledger.flush()
    assert admitted == 21
    status = ledger.read("rpd")
    assert (status.spent_requests, status.reserved_requests) == (20, 0)


def test_the_journal_keeps_the_requests_of_a_settlement() -> None:
    budget = Budget("rpd", window="day", limit_requests=5)
    ledger = Ledger(MemoryStore(), [budget])
    reservation = reserve(ledger)
    spend = Spend(reservation.lines[0].ref, 10, 0, requests=1)
    request = SettleRequest(reservation.id, (spend,))
    assert decode(json.loads(json.dumps(encode(request)))).spends[0].requests == 1
    plain = SettleRequest(reservation.id, (Spend(reservation.lines[0].ref, 10, 0),))
    assert "requests" not in encode(plain)["spends"][0]
    assert decode(encode(plain)).spends[0].requests is None


def test_gauges_export_requests() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    ledger = Ledger(MemoryStore(), [Budget("rpm", window="minute", limit_requests=10)])
    ledger.settle(reserve(ledger), 10, {})
    reserve(ledger)
    registry = CollectorRegistry()
    registry.register(BudgetCollector(LedgerBudgetSource(ledger)))
    text = generate_latest(registry).decode()
    assert 'bedrock_budget_budget_limit_requests{budget="rpm"} 10.0' in text
    assert 'bedrock_budget_budget_spent_requests{budget="rpm"} 1.0' in text
    assert 'bedrock_budget_budget_reserved_requests{budget="rpm"} 1.0' in text
    assert 'bedrock_budget_budget_utilisation_ratio{budget="rpm",unit="requests"} 0.1' in text


# -- through the wrapper and the CLI ------------------------------------------------------------------------


def test_a_failed_call_gives_its_request_back_and_blocked_calls_never_leave(fake: FakeBedrock) -> None:
    ledger = Ledger("memory://", [bb.Budget(name="rpm", window="minute", limit_requests=2)])
    client = bb.wrap(fake.client(), ledger=ledger)

    def converse() -> Any:
        return client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 50})

    fake.fail_next("converse", "ValidationException")
    with pytest.raises(client.exceptions.ValidationException):
        converse()
    converse()
    converse()
    sent = fake.request_count
    with pytest.raises(bb.BudgetExceededError):
        converse()
    assert fake.request_count == sent
    assert (ledger.read("rpm").spent_requests, ledger.read("rpm").reserved_requests) == (2, 0)


def test_budgets_set_edits_the_request_limit_and_list_shows_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n  - name: rpm  # per minute\n    window: minute\n    limit_usd: 5\n")
    assert main(["budgets", "set", "rpm", "--limit-requests", "600", "--budgets", str(path)]) == 0
    assert "limit_requests: 600" in path.read_text()
    assert "# per minute" in path.read_text()
    (budget,) = parse_budgets_yaml(path.read_text())
    assert budget.limit_requests == 600
    capsys.readouterr()
    assert main(["budgets", "list", "--store", "memory://", "--budgets", str(path)]) == 0
    assert "600 requests per minute" in capsys.readouterr().out
    assert main(["budgets", "set", "rpm", "--limit-requests", "1.5", "--budgets", str(path)]) != 0
    assert "limit_requests" in capsys.readouterr().err
    assert budget == parse_budgets_yaml(path.read_text())[0]  # a refused value leaves the file alone


def test_a_per_value_override_gives_one_user_a_request_limit_of_their_own() -> None:
    (budget,) = parse_budgets_yaml(
        "per-user-rpm:\n  scope: {user: '*'}\n  window: minute\n  limit_requests: 1\n"
        "  overrides: {u-17: {limit_requests: 3}}\n"
    )
    ledger = Ledger(MemoryStore(), [budget])
    for user, admitted in (("u-1", 1), ("u-17", 3)):
        for _ in range(admitted):
            ledger.reserve({"user": user}, "m", None, 1, {})
        with pytest.raises(BudgetBlockedError) as refused:
            ledger.reserve({"user": user}, "m", None, 1, {})
        assert (refused.value.unit, refused.value.limit) == ("requests", admitted)
    with pytest.raises(BudgetConfigError):
        Budget("x", scope={"user": "*"}, limit_requests=1, overrides={"u-1": {"limit_requests": "1.5"}})


@pytest.mark.backends("redis")
def test_budgets_set_publishes_request_limits_and_overrides(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in list(os.environ):
        if variable.startswith("BEDROCK_BUDGET"):
            monkeypatch.delenv(variable)
    assert backend.uri is not None
    store_args = ["--store", backend.uri, "--prefix", backend.prefix]
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n  per-user: {scope: {user: '*'}, window: minute, limit_requests: 10}\n")
    assert main(["budgets", "apply", str(path), *store_args]) == 0
    assert main(["budgets", "set", "per-user", "--value", "u-17", "--limit-requests", "50", *store_args]) == 0
    assert main(["budgets", "set", "per-user", "--limit-requests", "20", *store_args]) == 0
    capsys.readouterr()
    assert main(["budgets", "show", "per-user", "--value", "u-17", *store_args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["effective"]["limit_requests"] == 50
    published = read_published(backend.make())
    assert published is not None
    assert published.budget("per-user").limit_requests == 20
