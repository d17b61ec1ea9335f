"""Budgets enforced through the wrapper, against the local fake Bedrock and the in-memory store."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.pricing import default_price_table
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records
from polling import wait_until

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET = "anthropic.claude-3-5-sonnet-20241022-v2:0"
MESSAGES = [{"role": "user", "content": [{"text": "Write one line."}]}]


def converse(client: Any, model: str = HAIKU, max_tokens: int = 100, **extra: Any) -> Any:
    return client.converse(
        modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": max_tokens}, **extra
    )


def spent(ledger: Ledger, budget: str, scope: dict[str, str] | None = None) -> Decimal:
    return ledger.read(budget, scope).spent_usd


def test_block_refuses_before_any_io_and_never_overshoots(fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=1000, output_tokens=100))
    actual = default_price_table().price(HAIKU, bb.Usage(input_tokens=1000, output_tokens=100)).total_usd
    limit = Decimal("0.01")
    ledger = Ledger("memory://", [bb.Budget(name="chat", scope={"app": "chat"}, limit_usd=limit)])
    records = Records()
    client = bb.wrap(fake.client(), ledger=ledger, listeners=[records], attribution={"app": "chat"})
    allowed = 0
    with pytest.raises(bb.BudgetExceededError) as refused:  # noqa: PT012 - loop until refused
        for _ in range(100):
            converse(client)
            allowed += 1
    assert fake.request_count == allowed
    assert allowed > 0
    assert spent(ledger, "chat") == actual * allowed
    assert spent(ledger, "chat") <= limit
    error = refused.value
    assert error.budget == "chat"
    assert error.limit == limit
    assert error.scope == {"app": "chat"}
    assert error.resets_at is not None
    assert records[-1].outcome == "blocked"
    assert records[-1].blocked_by == "chat"
    assert ledger.read("chat").reserved_usd == 0


def test_worst_case_alone_above_limit_is_refused(fake: FakeBedrock) -> None:
    ledger = Ledger("memory://", [bb.Budget(name="tiny", limit_usd="0.0001")])
    client = bb.wrap(fake.client(), ledger=ledger)
    with pytest.raises(bb.BudgetExceededError, match="max"):
        converse(client, model=SONNET, max_tokens=4000)
    assert fake.request_count == 0


def test_downgrade_switches_to_the_cheaper_model(fake: FakeBedrock) -> None:
    ledger = Ledger(
        "memory://",
        [
            bb.Budget(
                name="premium",
                limit_usd="0.001",
                action="downgrade",
                downgrade_to=f"us.{HAIKU}",
                model=SONNET,
            )
        ],
    )
    records = Records()
    client = bb.wrap(fake.client(), ledger=ledger, listeners=[records])
    converse(client, model=f"us.{SONNET}", max_tokens=1000)
    (record,) = records
    assert record.model_id == HAIKU
    assert record.downgraded_from == f"us.{SONNET}"
    assert fake.requests[-1].model_id == f"us.{HAIKU}"


def test_warn_budget_never_refuses_but_reports(fake: FakeBedrock) -> None:
    ledger = Ledger("memory://", [bb.Budget(name="shadow", limit_usd="0.000001", action="warn")])
    records = Records()
    client = bb.wrap(fake.client(), ledger=ledger, listeners=[records])
    converse(client)
    converse(client)
    assert [r.outcome for r in records] == ["ok", "ok"]
    assert records[-1].budget_warnings == ("shadow",)
    assert spent(ledger, "shadow") > Decimal("0.000001")


def test_bedrock_error_releases_the_hold(fake: FakeBedrock) -> None:
    ledger = Ledger("memory://", [bb.Budget(name="all", limit_usd="5")])
    client = bb.wrap(fake.client(), ledger=ledger)
    fake.fail_next("converse", "ValidationException")
    with pytest.raises(client.exceptions.ValidationException):
        converse(client)
    status = ledger.read("all")
    assert status.spent_usd == 0
    assert status.reserved_usd == 0


def test_stream_settles_actual_cost(fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=500, output_tokens=50))
    ledger = Ledger("memory://", [bb.Budget(name="all", limit_usd="5")])
    client = bb.wrap(fake.client(), ledger=ledger)
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 2000})
    assert ledger.read("all").reserved_usd > 0
    list(response["stream"])
    expected = default_price_table().price(HAIKU, bb.Usage(input_tokens=500, output_tokens=50)).total_usd
    status = ledger.read("all")
    assert status.spent_usd == expected
    assert status.reserved_usd == 0


def test_per_user_budgets_and_token_limits(fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=100, output_tokens=20))
    ledger = Ledger("memory://", [bb.Budget(name="per-user", scope={"user": "*"}, limit_tokens=400)])
    client = bb.wrap(fake.client(), ledger=ledger)
    with bb.attribute(user="alice"):
        converse(client, max_tokens=20)
        converse(client, max_tokens=20)
    with bb.attribute(user="bob"):
        converse(client, max_tokens=20)
    assert ledger.read("per-user", {"user": "alice"}).spent_tokens == 240
    assert ledger.read("per-user", {"user": "bob"}).spent_tokens == 120


def test_unknown_model_refused_when_a_dollar_budget_applies(fake: FakeBedrock) -> None:
    fake.map_model("anthropic.claude-unreleased-v1:0", HAIKU)
    ledger = Ledger("memory://", [bb.Budget(name="all", limit_usd="5")])
    client = bb.wrap(fake.client(), ledger=ledger)
    with pytest.raises(bb.UnknownModelError):
        converse(client, model="anthropic.claude-unreleased-v1:0")
    assert fake.request_count == 0


def test_count_tokens_gives_an_exact_reservation(fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=7, output_tokens=1))
    ledger = Ledger("memory://", [bb.Budget(name="all", limit_tokens=1_000_000)])
    client = bb.wrap(fake.client(), ledger=ledger, count_tokens=True)
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 10})
    counted = fake.calls("count_tokens")
    assert len(counted) == 1
    assert json.loads(counted[0].body)["input"]["converse"]["messages"] == MESSAGES
    check = fake.client().count_tokens(modelId=HAIKU, input={"converse": {"messages": MESSAGES}})
    exact = check["inputTokens"]
    assert ledger.read("all").reserved_tokens == exact + 10
    list(response["stream"])
    converse(client, max_tokens=10)
    assert len(fake.calls("count_tokens")) == 2  # ours once (then cached by content), plus the check above


def test_a_model_without_count_tokens_is_not_asked_on_every_call(fake: FakeBedrock) -> None:
    # Bedrock refuses CountTokens for models that do not support it; each call must not pay that round trip.
    fake.fail_next("count_tokens", "ValidationException", times=1)
    ledger = Ledger("memory://", [bb.Budget(name="all", limit_tokens=1_000_000)])
    client = bb.wrap(fake.client(), ledger=ledger, count_tokens=True)
    for index in range(3):
        client.converse(
            modelId=HAIKU,
            messages=[{"role": "user", "content": [{"text": f"question {index}"}]}],
            inferenceConfig={"maxTokens": 10},
        )
    assert len(fake.calls("count_tokens")) == 1
    assert len(fake.calls("converse")) == 3


def test_a_failed_count_is_retried_after_a_pause() -> None:
    from bedrock_budget.budgets.token_counts import TokenCountCache

    now = [0.0]
    answers: list[object] = [TimeoutError("read timeout"), {"inputTokens": 5}]

    class Client:
        asked = 0

        def count_tokens(self, **kwargs: object) -> object:
            Client.asked += 1
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    cache = TokenCountCache(failed_seconds=30.0, clock=lambda: now[0])
    kwargs = {"messages": MESSAGES}
    assert cache.count(Client(), HAIKU, "Converse", kwargs) is None
    now[0] = 29.0
    assert cache.count(Client(), HAIKU, "Converse", kwargs) is None
    assert Client.asked == 1
    now[0] = 31.0
    assert cache.count(Client(), HAIKU, "Converse", kwargs) == 5
    assert Client.asked == 2


def test_store_outage_deny_and_allow(fake: FakeBedrock) -> None:
    dead = "redis://127.0.0.1:1/0"
    deny = bb.wrap(fake.client(), budgets=[bb.Budget(name="all", limit_usd="5")], store=dead)
    with pytest.raises(bb.StoreUnavailableError):
        converse(deny)
    assert fake.request_count == 0
    records = Records()
    allow = bb.wrap(
        fake.client(),
        budgets=[bb.Budget(name="all", limit_usd="5")],
        store=dead,
        on_store_error="allow",
        listeners=[records],
    )
    converse(allow)
    assert records[0].outcome == "ok"
    guard = allow.bedrock_budget_meter.guard
    assert guard is not None
    # The call's budget spend at once, and its spend-ledger entry from a batch sent milliseconds later.
    wait_until(lambda: guard.ledger.journal_depth == 2, 5, message="the call's settlements in the journal")
    for client in (deny, allow):  # their stores' probe threads must not outlive the test
        client.bedrock_budget_meter.guard.ledger.close()


def test_unknown_wrap_option_is_an_error(fake: FakeBedrock) -> None:
    # wrap() has real keyword parameters: a misspelt one is Python's own error (and mypy's, before it runs).
    with pytest.raises(TypeError, match="budgetz"):
        bb.wrap(fake.client(), budgetz=[])  # type: ignore[call-arg]


def test_budgets_from_yaml_file(fake: FakeBedrock, tmp_path: Any) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(
        "budgets:\n  - name: chat-daily\n    scope: {app: chat}\n    window: day\n    limit_usd: '0.000001'\n"
    )
    client = bb.wrap(fake.client(), budgets=str(path), attribution={"app": "chat"})
    with pytest.raises(bb.BudgetExceededError):
        converse(client)


def test_store_failures_and_journal_reach_the_metrics(fake: FakeBedrock) -> None:
    from prometheus_client import CollectorRegistry

    from bedrock_budget.metrics import PrometheusListener

    registry = CollectorRegistry()
    client = bb.wrap(
        fake.client(),
        budgets=[bb.Budget(name="all", limit_usd="5")],
        store="redis://127.0.0.1:1/0",
        on_store_error="allow",
        listeners=[PrometheusListener(registry=registry)],
        # Without the spend ledger: its entry for each call goes to the store (and then the journal) from a
        # background batch a few milliseconds later, whenever that thread runs, so the count reported after
        # the second call would depend on the machine's speed. Here every failure happens in the calls.
        track=False,
    )
    converse(client)
    converse(client)
    errors = {
        sample.labels["operation"]: sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "bedrock_budget_store_errors_total"
    }
    assert errors == {"reserve": 2, "settle": 2}  # two reservations and two settlements failed
    assert registry.get_sample_value("bedrock_budget_journal_entries") == 2
    client.bedrock_budget_meter.guard.ledger.close()  # its store's probe thread must not outlive the test
