"""llama-index's BedrockConverse sends achat / acomplete / astream_chat through aioboto3 when aioboto3 is
installed: bb.instrument() meters them, one exact record per call, without any change to the llama-index
code."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.llms.bedrock_converse import BedrockConverse
from llama_index.llms.bedrock_converse import utils as converse_utils

import bedrock_budget as bb
from bedrock_budget.pricing import default_price_table
from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import HAIKU, Records, run

USAGE = UsageSpec(input_tokens=25, output_tokens=9)


def llm(fake: FakeBedrock, **extra: Any) -> BedrockConverse:
    # What a user writes, pointed at the fake: llama-index passes endpoint_url to every client it creates.
    return BedrockConverse(
        model=f"us.{HAIKU}",
        region_name=fake.region,
        endpoint_url=fake.endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
        max_retries=1,
        max_tokens=64,
        **extra,
    )


def assert_exact(records: Records, *, app: str) -> None:
    (record,) = records
    assert (record.outcome, record.estimated, record.partial) == ("ok", False, False)
    assert record.operation in {"Converse", "ConverseStream"}
    assert (record.usage.input_tokens, record.usage.output_tokens) == (25, 9)
    expected = default_price_table().price(HAIKU, bb.Usage(input_tokens=25, output_tokens=9))
    assert record.cost is not None
    assert record.cost.total_usd == expected.total_usd
    assert record.request_id
    assert record.attribution.get("app") == app


def test_llama_index_takes_the_aioboto3_path() -> None:
    """Otherwise the tests below would be metering its thread fallback (a sync boto3 client)."""
    assert converse_utils.HAS_AIOBOTO3


def test_acomplete_gives_one_exact_record(fake: FakeBedrock, records: Records) -> None:
    fake.set_usage(HAIKU, USAGE)
    bb.instrument(listeners=[records])
    model = llm(fake)

    async def main() -> str:
        with bb.attribute(app="rag"):
            return (await model.acomplete("Say something short.")).text

    assert run(main())
    assert fake.request_count == 1
    assert_exact(records, app="rag")
    assert records[0].operation == "Converse"


def test_achat_gives_one_exact_record(fake: FakeBedrock, records: Records) -> None:
    fake.set_usage(HAIKU, USAGE)
    bb.instrument(listeners=[records])
    model = llm(fake)

    async def main() -> Any:
        with bb.attribute(app="chat"):
            return await model.achat([ChatMessage(role="user", content="Say something short.")])

    assert run(main()).message.content
    assert_exact(records, app="chat")


def test_astream_chat_gives_one_exact_record(fake: FakeBedrock, records: Records) -> None:
    fake.set_usage(HAIKU, USAGE)
    bb.instrument(listeners=[records])
    model = llm(fake)

    async def main() -> list[str]:
        with bb.attribute(app="stream"):
            chunks = await model.astream_chat([ChatMessage(role="user", content="Say something short.")])
            return [chunk.delta or "" async for chunk in chunks]

    deltas = run(main())
    assert len(deltas) > 1
    assert_exact(records, app="stream")
    assert records[0].operation == "ConverseStream"


def test_not_instrumented_nothing_is_recorded(fake: FakeBedrock, records: Records) -> None:
    """The records above come from instrument(), not from something else in the way."""
    fake.set_usage(HAIKU, USAGE)
    bb.instrument(listeners=[records])
    bb.uninstrument()
    assert run(llm(fake).acomplete("Say something short.")).text
    assert fake.request_count == 1
    assert records == []


def test_a_budget_under_instrument_never_lets_the_async_call_through_unchecked(fake: FakeBedrock) -> None:
    """A budget too small for any call: the call fails with our error before a byte reaches Bedrock —
    refused as over budget where async clients enforce budgets, or refused as unenforceable where they
    do not yet (ConfigurationError). Either way nothing is sent, and llama-index does not retry it."""
    tiny = bb.Budget(
        name="tiny", scope={}, window="day", timezone="UTC", limit_usd="0.000001", action="block"
    )
    bb.instrument(budgets=[tiny])
    with pytest.raises(bb.BedrockBudgetError):
        run(llm(fake).acomplete("Say something short."))
    assert fake.request_count == 0
