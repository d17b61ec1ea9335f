"""``clamp`` budgets: a call whose worst case does not fit goes out with a lower output cap instead of
being refused, and 0 overshoot still holds. Rewriting each request shape, the search for the cap, and real
boto3 calls against the fake Bedrock (which honours the cap it receives)."""

from __future__ import annotations

import io
import json
import threading
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import bedrock_budget as bb
from bedrock_budget.budgets.clamping import largest_fitting, room
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.loading import budgets_from_env, load_budgets
from bedrock_budget.errors import BudgetConfigError, ClampRequiredError
from bedrock_budget.metrics import PrometheusListener
from bedrock_budget.pipeline.output_cap import cap_output
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Summarise the attached report."}]}]


# --- rewriting the cap -----------------------------------------------------------------------------------


def test_converse_cap_is_set_without_touching_the_callers_dictionaries() -> None:
    config = {"maxTokens": 4000, "temperature": 0.2}
    kwargs: dict[str, Any] = {"modelId": HAIKU, "messages": MESSAGES, "inferenceConfig": config}
    assert cap_output("Converse", "anthropic", kwargs, 700, 0)
    assert kwargs["inferenceConfig"] == {"maxTokens": 700, "temperature": 0.2}
    assert config == {"maxTokens": 4000, "temperature": 0.2}  # the caller's own dict is unchanged
    bare: dict[str, Any] = {"modelId": HAIKU, "messages": MESSAGES}
    assert cap_output("ConverseStream", "anthropic", bare, 5, 0)
    assert bare["inferenceConfig"] == {"maxTokens": 5}


@pytest.mark.parametrize(
    ("family", "body", "expected"),
    [
        ("anthropic", {"max_tokens": 4000, "messages": []}, {"max_tokens": 300, "messages": []}),
        ("nova", {"inferenceConfig": {"max_new_tokens": 4000}}, {"inferenceConfig": {"max_new_tokens": 300}}),
        ("nova", {"messages": []}, {"messages": [], "inferenceConfig": {"maxTokens": 300}}),
        ("llama", {"prompt": "x"}, {"prompt": "x", "max_gen_len": 300}),
        (
            "titan_text",
            {"inputText": "x"},
            {"inputText": "x", "textGenerationConfig": {"maxTokenCount": 300}},
        ),
        ("mistral", {"prompt": "x", "max_tokens": 9000}, {"prompt": "x", "max_tokens": 300}),
        ("openai_chat", {"max_tokens": 9000}, {"max_tokens": 300}),
        ("openai_chat", {}, {"max_completion_tokens": 300}),
        ("deepseek", {"prompt": "x"}, {"prompt": "x", "max_tokens": 300}),
    ],
)
def test_native_bodies_get_their_familys_own_field(
    family: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    kwargs: dict[str, Any] = {"modelId": "m", "body": json.dumps(body).encode()}
    assert cap_output("InvokeModel", family, kwargs, 300, 0)
    assert isinstance(kwargs["body"], bytes)
    assert json.loads(kwargs["body"]) == expected
    text: dict[str, Any] = {"modelId": "m", "body": json.dumps(body)}
    assert cap_output("InvokeModelWithResponseStream", family, text, 300, 0)
    assert isinstance(text["body"], str)  # a str body stays a str
    assert json.loads(text["body"]) == expected


@pytest.mark.parametrize(
    ("operation", "family", "body", "thinking"),
    [
        ("InvokeModel", "anthropic", b"not json {", 0),
        ("InvokeModel", "anthropic", b"[1, 2]", 0),
        ("InvokeModel", "titan_embed", b'{"inputText": "x"}', 0),  # no output cap to set
        ("InvokeModel", "anthropic", b'{"max_tokens": 4000, "thinking": {"budget_tokens": 2000}}', 2000),
        ("ApplyGuardrail", "guardrail", b"{}", 0),
    ],
)
def test_a_cap_that_cannot_be_set_leaves_the_request_as_it_was(
    operation: str, family: str, body: bytes, thinking: int
) -> None:
    kwargs: dict[str, Any] = {"modelId": "m", "body": body}
    assert not cap_output(operation, family, kwargs, 300, thinking)
    assert kwargs == {"modelId": "m", "body": body}


def test_the_search_finds_the_largest_fitting_cap() -> None:
    for limit in (0, 1, 2, 99, 100, 101, 4095, 4096):
        assert largest_fitting(1, 4096, lambda n, limit=limit: n <= limit) == (limit if limit >= 1 else None)
    assert largest_fitting(100, 50, lambda n: True) is None
    calls: list[int] = []
    largest_fitting(1, 65_536, lambda n: calls.append(n) is None and n <= 1234)
    assert len(calls) <= 18


# --- the budget --------------------------------------------------------------------------------------------


def test_clamp_budgets_are_checked_and_read_from_every_source() -> None:
    assert bb.Budget("c", limit_usd="1", action="clamp").min_output_tokens == 100
    assert (
        bb.Budget("c", limit_usd="1", action="clamp", min_output_tokens=20).to_dict()["min_output_tokens"]
        == 20
    )
    assert bb.Budget("b", limit_usd="1").min_output_tokens is None
    with pytest.raises(BudgetConfigError, match="only applies to action 'clamp'"):
        bb.Budget("b", limit_usd="1", min_output_tokens=20)
    with pytest.raises(BudgetConfigError, match="min_output_tokens"):
        bb.Budget("c", limit_usd="1", action="clamp", min_output_tokens=0)
    (from_yaml,) = load_budgets(
        io.StringIO("- {name: c, limit_usd: 1, action: clamp, min_output_tokens: 64}\n")
    )
    assert (from_yaml.action, from_yaml.min_output_tokens) == ("clamp", 64)
    (from_env,) = budgets_from_env({"BEDROCK_BUDGET__C": "limit_usd=1;action=clamp;min_output_tokens=64"})
    assert from_env == from_yaml
    with pytest.raises(BudgetConfigError, match="not a whole number"):
        budgets_from_env({"BEDROCK_BUDGET__C": "limit_usd=1;action=clamp;min_output_tokens=lots"})


def test_the_ledger_says_clamp_only_when_every_refusing_budget_clamps() -> None:
    usd = 1_000_000_000
    with MemoryStore() as store:
        clamping = Ledger(store, [bb.Budget("c", limit_usd="1", action="clamp")])
        with pytest.raises(ClampRequiredError) as refused:
            clamping.reserve({}, "m", None, 2 * usd, {})
        assert [room(r) for r in refused.value.refusals] == [usd]  # type: ignore[arg-type]
        both = Ledger(store, [bb.Budget("c2", limit_usd="1", action="clamp"), bb.Budget("b", limit_usd="1")])
        with pytest.raises(bb.BudgetExceededError) as blocked:
            both.reserve({}, "m", None, 2 * usd, {})
        assert not isinstance(blocked.value, ClampRequiredError)
        clamping.close()
        both.close()


# --- real calls --------------------------------------------------------------------------------------------


def converse(client: Any, max_tokens: int = 4000) -> Any:
    return client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": max_tokens})


def share_spent_at_first_refusal(
    fake: FakeBedrock, action: str, registry: CollectorRegistry | None = None
) -> tuple[Decimal, Records]:
    """Calls asking for up to 4,000 output tokens and using 1,500, until the first refusal."""
    fake.set_usage(HAIKU, UsageSpec(default_output_tokens=1500))
    limit = Decimal("0.10")
    records = Records()
    listeners: list[Any] = [records]
    if registry is not None:
        listeners.append(PrometheusListener(registry=registry))
    budget = bb.Budget("team", limit_usd=limit, action=action)
    client = bb.wrap(fake.client(), budgets=[budget], listeners=listeners)
    with pytest.raises(bb.BudgetExceededError):  # noqa: PT012 - loop until refused
        for _ in range(100):
            converse(client)
    spent = sum((r.cost_usd for r in records if r.outcome == "ok"), Decimal(0))
    assert spent <= limit
    return spent / limit, records


def test_clamp_spends_the_budget_that_block_leaves_unused(fake: FakeBedrock) -> None:
    blocked_share, _ = share_spent_at_first_refusal(fake, "block")
    registry = CollectorRegistry()
    clamped_share, records = share_spent_at_first_refusal(fake, "clamp", registry)
    print(f"share spent at the first refusal: block {blocked_share:.2%}, clamp {clamped_share:.2%}")
    assert clamped_share >= Decimal("0.95")
    assert clamped_share > blocked_share
    clamped = [r for r in records if r.clamped_to is not None and r.outcome == "ok"]
    assert clamped, "no call was clamped"
    assert registry.get_sample_value("bedrock_budget_clamped_total", {"budget": "team"}) == len(clamped)
    for record in clamped:
        assert (record.clamped_from, record.clamped_by) == (4000, "team")
        assert 100 <= record.clamped_to < 4000
        assert record.usage.output_tokens <= record.clamped_to
    # What went out is what the record says: the fake received the lowered cap.
    sent = [r.json()["inferenceConfig"]["maxTokens"] for r in fake.requests if r.operation == "Converse"]
    assert sent[-len(clamped) :] == [r.clamped_to for r in clamped]
    assert records[-1].outcome == "blocked"
    assert records[0].as_dict()["clamped_to"] is None  # the first calls fit as they were


def test_a_call_that_cannot_keep_the_minimum_is_refused_before_any_io(fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(default_output_tokens=1500))
    budget = bb.Budget("team", limit_usd="0.0005", action="clamp", min_output_tokens=500)
    client = bb.wrap(fake.client(), budgets=[budget])
    with pytest.raises(ClampRequiredError):
        converse(client)  # $0.0005 holds ~125 output tokens: fewer than the 500 it must keep
    assert fake.request_count == 0


def test_concurrent_clamped_calls_never_overshoot(fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(default_output_tokens=1500))
    limit = Decimal("0.05")
    records = Records()
    ledger = Ledger("memory://", [bb.Budget("team", limit_usd=limit, action="clamp", min_output_tokens=16)])
    client = bb.wrap(fake.client(), ledger=ledger, listeners=[records])

    def worker() -> None:
        for _ in range(15):
            try:
                converse(client)
            except bb.BudgetExceededError:
                return

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spent = sum((r.cost_usd for r in records if r.outcome == "ok"), Decimal(0))
    assert spent == ledger.read("team").spent_usd
    assert spent <= limit
    assert spent >= limit * Decimal("0.9")
    assert ledger.read("team").reserved_usd == 0
    ledger.close()


def test_a_per_call_cap_refuses_or_clamps_any_single_large_call(fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(default_output_tokens=1500))
    blocking = bb.Budget("cap", limit_usd="100", max_call_usd="0.001")
    assert blocking.to_dict()["max_call_usd"] == "0.001"
    (from_yaml,) = load_budgets(io.StringIO("- {name: cap, limit_usd: 100, max_call_usd: 0.001}\n"))
    assert from_yaml == blocking
    client = bb.wrap(fake.client(), budgets=[blocking])
    with pytest.raises(bb.BudgetExceededError, match="per-call cap"):
        converse(client)  # up to 4,000 output tokens: a worst case of about $0.016
    assert fake.request_count == 0
    converse(client, max_tokens=100)  # about $0.0004: under the cap
    assert fake.request_count == 1

    records = Records()
    clamping = bb.Budget("cap", limit_usd="100", max_call_usd="0.001", action="clamp", min_output_tokens=50)
    client = bb.wrap(fake.client(), budgets=[clamping], listeners=[records])
    converse(client)
    (record,) = records
    assert (record.clamped_from, record.clamped_by) == (4000, "cap")
    assert record.clamped_to is not None
    assert 50 <= record.clamped_to < 250  # $0.001 / $4 per M output tokens
    assert record.cost_usd <= Decimal("0.001")
    assert fake.requests[-1].json()["inferenceConfig"]["maxTokens"] == record.clamped_to
    warning = bb.Budget("cap", limit_usd="100", max_call_usd="0.001", action="warn")
    bb.wrap(fake.client(), budgets=[warning]).converse(
        modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 4000}
    )
    assert fake.request_count == 3
