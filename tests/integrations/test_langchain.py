"""langchain-aws ``ChatBedrockConverse(client=wrapped)`` against the fake Bedrock: LangChain gets its
answers unchanged and every call is metered (operation, model, usage, cost, attribution)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records

from .conftest import FILLER_START, expected_cost

try:
    from langchain_aws import ChatBedrockConverse
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
except ImportError as missing:  # pragma: no cover - only without the dev extras
    raise ImportError("langchain-aws is not installed (pip install -e '.[dev]')") from missing

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
BASE = "anthropic.claude-haiku-4-5-20251001-v1:0"
USAGE = UsageSpec(input_tokens=1200, output_tokens=40, cache_read_tokens=3000)
METERED = bb.Usage(input_tokens=1200, output_tokens=40, cache_read_tokens=3000)


def chat_model(fake: FakeBedrock, client: Any) -> ChatBedrockConverse:
    return ChatBedrockConverse(
        client=client, bedrock_client=fake.control_client(), model=MODEL, max_tokens=200, temperature=0.1
    )


@pytest.fixture
def fake(fake_bedrock: FakeBedrock) -> FakeBedrock:
    fake_bedrock.set_usage(MODEL, USAGE)
    return fake_bedrock


def test_chat_turn_is_answered_and_metered(fake: FakeBedrock, records: Records) -> None:
    client = bb.wrap(fake.client(), listeners=[records], attribution={"app": "docs"})
    llm = chat_model(fake, client)
    with bb.attribute(user="u-7"):
        answer = llm.invoke([SystemMessage("Be brief."), HumanMessage("What is a budget?")])

    assert isinstance(answer, AIMessage)
    assert answer.text.startswith(FILLER_START)
    assert len(answer.text.split()) == 40  # the fake writes one word per output token
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] == 40

    (record,) = records
    assert record.operation == "Converse"
    assert record.requested_model_id == MODEL
    assert record.model_id == BASE
    assert record.outcome == "ok"
    assert record.usage == METERED
    assert record.cost_usd > 0
    assert record.cost_usd == expected_cost(MODEL, METERED)
    assert dict(record.attribution) == {"app": "docs", "user": "u-7"}

    # The request LangChain built reached Bedrock untouched by the wrapper.
    (sent,) = fake.calls("converse")
    body = json.loads(sent.body)
    assert sent.model_id == MODEL
    assert body["system"] == [{"text": "Be brief."}]
    assert body["messages"][0]["content"][0]["text"] == "What is a budget?"
    assert body["inferenceConfig"]["maxTokens"] == 200


def test_streamed_turn_is_answered_and_metered_when_the_stream_ends(
    fake: FakeBedrock, records: Records
) -> None:
    client = bb.wrap(fake.client(), listeners=[records])
    llm = chat_model(fake, client)
    chunks = llm.stream("Tell me about budgets.")
    first = next(chunks)
    assert records == []  # priced from the final metadata event, not before
    text = first.text + "".join(chunk.text for chunk in chunks)

    assert text.startswith(FILLER_START)
    assert len(text.split()) == 40
    (record,) = records
    assert record.operation == "ConverseStream"
    assert record.model_id == BASE
    assert record.outcome == "ok"
    assert not record.partial
    assert record.usage == METERED
    assert record.cost_usd == expected_cost(MODEL, METERED) > 0
    assert [r.operation for r in fake.requests] == ["ConverseStream"]


def test_async_turns_keep_the_callers_attribution(fake: FakeBedrock, records: Records) -> None:
    client = bb.wrap(fake.client(), listeners=[records])
    llm = chat_model(fake, client)

    async def turns() -> tuple[str, str]:
        with bb.attribute(user="u-async"):
            answer = await llm.ainvoke("one")
            streamed = "".join([chunk.text async for chunk in llm.astream("two")])
        return answer.text, streamed

    answer, streamed = asyncio.run(turns())
    assert answer.startswith(FILLER_START)
    assert streamed.startswith(FILLER_START)
    assert sorted(r.operation for r in records) == ["Converse", "ConverseStream"]
    assert {r.attribution.get("user") for r in records} == {"u-async"}
    assert all(r.cost_usd == expected_cost(MODEL, METERED) for r in records)


def test_budget_refusal_surfaces_through_langchain_before_any_request(
    fake: FakeBedrock, records: Records
) -> None:
    client = bb.wrap(
        fake.client(), listeners=[records], budgets=[bb.Budget("docs-daily", limit_usd="0.000001")]
    )
    llm = chat_model(fake, client)
    with pytest.raises(bb.BudgetExceededError) as refused:
        llm.invoke("hello")
    assert refused.value.budget == "docs-daily"
    with pytest.raises(bb.BudgetExceededError):
        list(llm.stream("hello"))
    assert fake.request_count == 0
    assert [r.outcome for r in records] == ["blocked", "blocked"]
