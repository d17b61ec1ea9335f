"""strands-agents ``BedrockModel`` against the fake Bedrock: the agent gets its answers unchanged and every
call is metered. BedrockModel builds its own client from a boto3 session, so it is metered either through
``bb.instrument()`` or by wrapping ``model.client`` after the fact."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import boto3
import pytest

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records

from .conftest import FILLER_START, expected_cost

try:
    from strands import Agent
    from strands.models import BedrockModel
except ImportError as missing:  # pragma: no cover - only without the dev extras
    raise ImportError("strands-agents is not installed (pip install -e '.[dev]')") from missing

NOVA = "us.amazon.nova-pro-v1:0"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SYSTEM = "You are a terse travel assistant."


@pytest.fixture
def fake(fake_bedrock: FakeBedrock) -> FakeBedrock:
    fake_bedrock.set_usage(NOVA, UsageSpec(input_tokens=900, output_tokens=30))
    fake_bedrock.set_usage(HAIKU, UsageSpec(input_tokens=700, output_tokens=25, cache_read_tokens=2000))
    return fake_bedrock


@pytest.fixture
def instrumented(records: Records) -> Iterator[Records]:
    bb.instrument(listeners=[records], attribution={"app": "travel"})
    try:
        yield records
    finally:
        bb.uninstrument()


def bedrock_model(fake: FakeBedrock, model_id: str, *, streaming: bool) -> BedrockModel:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    return BedrockModel(
        boto_session=session,
        endpoint_url=fake.endpoint_url,
        model_id=model_id,
        max_tokens=300,
        streaming=streaming,
    )


def test_chat_turn_through_instrument_is_answered_and_metered(
    fake: FakeBedrock, instrumented: Records
) -> None:
    model = bedrock_model(fake, NOVA, streaming=False)
    assert isinstance(model.client, bb.BudgetedClient)
    agent = Agent(model=model, system_prompt=SYSTEM, callback_handler=None)
    with bb.attribute(user="u-3"):
        result = agent("Where should I go this weekend?")

    assert result.stop_reason == "end_turn"
    assert str(result).strip().startswith(FILLER_START)
    assert len(str(result).split()) == 30
    assert result.metrics.accumulated_usage["outputTokens"] == 30

    (record,) = instrumented
    usage = bb.Usage(input_tokens=900, output_tokens=30)
    assert record.operation == "Converse"
    assert record.requested_model_id == NOVA
    assert record.model_id == "amazon.nova-pro-v1:0"
    assert record.outcome == "ok"
    assert record.usage == usage
    assert record.cost_usd == expected_cost(NOVA, usage) > 0
    # Strands calls the model on a worker thread; the caller's attribution must still reach the record.
    assert dict(record.attribution) == {"app": "travel", "user": "u-3"}

    (sent,) = fake.calls("converse")
    body = json.loads(sent.body)
    assert body["system"] == [{"text": SYSTEM}]
    assert body["messages"][-1]["content"][0]["text"] == "Where should I go this weekend?"


def test_streamed_turn_through_instrument_is_answered_and_metered(
    fake: FakeBedrock, instrumented: Records
) -> None:
    agent = Agent(model=bedrock_model(fake, HAIKU, streaming=True), callback_handler=None)

    async def stream() -> list[str]:
        with bb.attribute(user="u-4"):
            return [event["data"] async for event in agent.stream_async("And from Porto?") if "data" in event]

    pieces = asyncio.run(stream())
    assert len(pieces) > 1  # really streamed, in several deltas
    text = "".join(pieces)
    assert text.startswith(FILLER_START)
    assert len(text.split()) == 25

    (record,) = instrumented
    usage = bb.Usage(input_tokens=700, output_tokens=25, cache_read_tokens=2000)
    assert record.operation == "ConverseStream"
    assert record.model_id == "anthropic.claude-haiku-4-5-20251001-v1:0"
    assert record.outcome == "ok"
    assert not record.partial
    assert record.usage == usage
    assert record.cost_usd == expected_cost(HAIKU, usage) > 0
    assert record.attribution.get("user") == "u-4"
    assert [r.operation for r in fake.requests] == ["ConverseStream"]


def test_wrapping_the_models_own_client_meters_and_enforces_budgets(
    fake: FakeBedrock, records: Records
) -> None:
    model = bedrock_model(fake, NOVA, streaming=True)
    model.client = bb.wrap(
        model.client,
        listeners=[records],
        budgets=[bb.Budget("travel-daily", limit_usd="0.0015", action="block")],
    )
    agent = Agent(model=model, callback_handler=None)
    # Each turn reserves about $0.0011 (its input bound and 300 output tokens) and costs 900 x $0.80/M +
    # 30 x $3.20/M = $0.000816: the first fits, the second's reservation does not fit what is left.
    agent("First question")
    assert [r.outcome for r in records] == ["ok"]
    assert records[0].cost_usd == expected_cost(NOVA, bb.Usage(input_tokens=900, output_tokens=30))
    with pytest.raises(bb.BudgetExceededError) as refused:
        agent("Second question")
    assert refused.value.budget == "travel-daily"
    assert fake.request_count == 1
    assert [r.outcome for r in records] == ["ok", "blocked"]
