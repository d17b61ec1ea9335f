"""Every billable operation through a wrapped aiobotocore client gives the record a wrapped boto3 client
gives for the same call: same usage, same exact price, same attribution, same flags."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiobotocore.client import AioBaseClient
from botocore.exceptions import ClientError

import bedrock_budget as bb
from bedrock_budget.pricing import default_price_table
from bedrock_budget.testing import FakeBedrock, GuardrailUsageSpec, UsageSpec
from bedrock_budget.wrapper.async_body import BufferedBody
from conftest import HAIKU, MESSAGES, Records, converse, raw_client, run, wrapped

# What differs between two runs of the same call, whichever client made it.
_PER_RUN = ("timestamp", "request_id", "latency_seconds", "time_to_first_token_seconds")

INVOKE_BODIES: dict[str, dict[str, Any]] = {
    HAIKU: {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": MESSAGES},
    "amazon.nova-lite-v1:0": {"messages": MESSAGES, "inferenceConfig": {"maxTokens": 50}},
    "amazon.titan-text-express-v1": {"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 50}},
    "meta.llama3-1-70b-instruct-v1:0": {"prompt": "hi", "max_gen_len": 50},
    "mistral.mistral-large-2407-v1:0": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50},
    "cohere.command-r-v1:0": {"message": "hi", "max_tokens": 50},
    "ai21.jamba-1-5-mini-v1:0": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50},
    "deepseek.r1-v1:0": {"prompt": "hi", "max_tokens": 50},
    "openai.gpt-oss-20b-1:0": {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 50},
    "amazon.titan-embed-text-v2:0": {"inputText": "hello"},
    "amazon.titan-image-generator-v2:0": {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a lighthouse"},
        "imageGenerationConfig": {"numberOfImages": 2, "width": 512, "height": 512, "quality": "standard"},
    },
}
NOVA_REEL_INPUT = {
    "taskType": "TEXT_VIDEO",
    "textToVideoParams": {"text": "a lighthouse at dusk"},
    "videoGenerationConfig": {"durationSeconds": 6, "fps": 24, "dimension": "1280x720"},
}


def comparable(record: bb.CallRecord) -> dict[str, object]:
    view = record.as_dict()
    for key in _PER_RUN:
        view.pop(key)
    return view


# Each case: (name, sync call, async call). Both read the whole response, as a caller would.
def _sync_stream(response: Any, key: str) -> list[Any]:
    return list(response[key])


async def _async_stream(response: Any, key: str) -> list[Any]:
    return [event async for event in response[key]]


def _cases() -> list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]]:
    cases: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = []
    kw_converse = {"modelId": f"us.{HAIKU}", "messages": MESSAGES, "inferenceConfig": {"maxTokens": 64}}
    cases.append(("converse", lambda c: c.converse(**kw_converse), lambda c: c.converse(**kw_converse)))

    async def converse_stream(c: Any) -> Any:
        return await _async_stream(await c.converse_stream(**kw_converse), "stream")

    cases.append(
        (
            "converse_stream",
            lambda c: _sync_stream(c.converse_stream(**kw_converse), "stream"),
            converse_stream,
        )
    )
    for model, body in INVOKE_BODIES.items():
        kw = {"modelId": model, "body": json.dumps(body)}

        def sync_invoke(c: Any, kw: dict[str, Any] = kw) -> Any:
            return json.loads(c.invoke_model(**kw)["body"].read())

        async def async_invoke(c: Any, kw: dict[str, Any] = kw) -> Any:
            return json.loads(await (await c.invoke_model(**kw))["body"].read())

        cases.append((f"invoke_model:{model}", sync_invoke, async_invoke))
    kw_stream = {"modelId": HAIKU, "body": json.dumps(INVOKE_BODIES[HAIKU])}

    async def invoke_stream(c: Any) -> Any:
        return await _async_stream(await c.invoke_model_with_response_stream(**kw_stream), "body")

    cases.append(
        (
            "invoke_model_with_response_stream",
            lambda c: _sync_stream(c.invoke_model_with_response_stream(**kw_stream), "body"),
            invoke_stream,
        )
    )
    kw_guard = {
        "guardrailIdentifier": "gr-1",
        "guardrailVersion": "1",
        "source": "INPUT",
        "content": [{"text": {"text": "x" * 2500}}],
    }
    cases.append(
        ("apply_guardrail", lambda c: c.apply_guardrail(**kw_guard), lambda c: c.apply_guardrail(**kw_guard))
    )
    kw_guarded = {**kw_converse, "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"}}
    cases.append(
        ("converse+guardrail", lambda c: c.converse(**kw_guarded), lambda c: c.converse(**kw_guarded))
    )
    kw_job = {
        "modelId": "amazon.nova-reel-v1:1",
        "modelInput": NOVA_REEL_INPUT,
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://bucket/videos"}},
    }
    cases.append(
        (
            "start_async_invoke",
            lambda c: c.start_async_invoke(**kw_job),
            lambda c: c.start_async_invoke(**kw_job),
        )
    )
    return cases


CASES = _cases()


@pytest.mark.parametrize(("name", "sync_call", "async_call"), CASES, ids=[case[0] for case in CASES])
def test_same_record_as_the_sync_client(
    name: str,
    sync_call: Callable[[Any], Any],
    async_call: Callable[[Any], Any],
    fake: FakeBedrock,
) -> None:
    fake.set_usage("*", UsageSpec(input_tokens=321, output_tokens=45, cache_read_tokens=7))
    fake.set_guardrail_usage(GuardrailUsageSpec(content_policy_units=3, topic_policy_units=2))
    sync_records, async_records = Records(), Records()
    with bb.attribute(user="u-1", app="parity"):
        sync_result = sync_call(bb.wrap(fake.client(), listeners=[sync_records]))

        async def main() -> Any:
            async with wrapped(fake, async_records) as client:
                return await async_call(client)

        async_result = run(main())
    assert len(sync_records) == len(async_records) == 1
    (sync_record,), (async_record,) = sync_records, async_records
    assert comparable(async_record) == comparable(sync_record)
    assert async_record.cost == sync_record.cost
    assert async_record.request_id
    assert async_record.attribution == {"user": "u-1", "app": "parity"}
    if name != "start_async_invoke":
        assert async_record.cost is not None
        assert async_record.cost.total_usd > 0
    # The caller got the whole response either way.
    assert type(async_result) is type(sync_result)
    if isinstance(sync_result, list):
        assert len(async_result) == len(sync_result)


@pytest.mark.parametrize("model", ["amazon.titan-image-generator-v2:0", HAIKU])
def test_invoke_model_body_reads_as_before(model: str, fake: FakeBedrock, records: Records) -> None:
    """With headers that settle the call the body is untouched; otherwise it is read first and handed
    back as an unread body: read(n), iter_chunks, iter_lines and async with all work."""
    fake.set_usage(model, UsageSpec(input_tokens=12, output_tokens=3))
    body = json.dumps(INVOKE_BODIES[model])

    async def main() -> tuple[bytes, bytes, list[bytes], Any]:
        async with raw_client(fake) as raw:
            expected = await (await raw.invoke_model(modelId=model, body=body))["body"].read()
            client = bb.wrap(raw, listeners=[records])
            first = await client.invoke_model(modelId=model, body=body)
            returned = first["body"]
            head = await returned.read(5)
            rest = b"".join([chunk async for chunk in returned.iter_chunks(7)])
            second = await client.invoke_model(modelId=model, body=body)
            # The body itself, not what `async with` gives: aiobotocore 2.x's own body gives its aiohttp
            # response there, which has no iter_lines.
            again = second["body"]
            async with again:
                lines = [line async for line in again.iter_lines()]
            return expected, head + rest, lines, returned

    expected, read_back, lines, returned = run(main())
    # Each call has its own ids; everything else in the body is the same, and nothing was lost.
    plain, metered = json.loads(expected), json.loads(read_back)
    assert metered.keys() == plain.keys()
    assert metered.get("usage") == plain.get("usage")
    assert len(read_back) == len(expected)
    assert json.loads(b"".join(lines)).keys() == plain.keys()
    assert len(records) == 2
    assert isinstance(returned, BufferedBody) == (model != HAIKU)


def test_records_arrive_after_the_response_never_at_coroutine_creation(
    fake: FakeBedrock, records: Records
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))
    fake.set_latency(0.05)

    async def main() -> None:
        async with wrapped(fake, records) as client:
            pending = converse(client)
            await asyncio.sleep(0.02)
            assert records == []
            assert fake.request_count == 0
            response = await pending
            (record,) = records
            assert record.request_id == response["ResponseMetadata"]["RequestId"]
            assert (record.usage.input_tokens, record.usage.output_tokens) == (12, 30)
            assert not record.estimated
            assert record.outcome == "ok"
            expected = default_price_table().price(HAIKU, bb.Usage(input_tokens=12, output_tokens=30))
            assert record.cost is not None
            assert record.cost.total_usd == expected.total_usd

    run(main())


def test_proxy_is_the_client(fake: FakeBedrock, records: Records) -> None:
    async def main() -> None:
        async with raw_client(fake) as raw:
            client = bb.wrap(raw, listeners=[records])
            assert isinstance(client, AioBaseClient)
            assert bb.unwrap(client) is raw
            assert bb.unwrap(bb.wrap(client, listeners=[])) is raw  # rewrapping replaces, never stacks
            assert client.meta.region_name == raw.meta.region_name
            assert client.exceptions.ThrottlingException is raw.exceptions.ThrottlingException
            # Non-billable operations pass straight through and stay awaitable.
            counted = await client.count_tokens(modelId=HAIKU, input={"converse": {"messages": MESSAGES}})
            assert counted["inputTokens"] > 0
            assert records == []

    run(main())


def test_async_with_yields_the_proxy(fake: FakeBedrock, records: Records) -> None:
    async def main() -> None:
        context = raw_client(fake)
        raw = await context._coro  # the client before it is entered, as aiobotocore's context creates it
        async with bb.wrap(raw, listeners=[records]) as client:
            assert type(client).__name__ == "AsyncBudgetedClient"
            await converse(client)
        assert len(records) == 1

    run(main())


def test_bedrock_error_gives_one_error_record_and_the_same_exception(
    fake: FakeBedrock, records: Records
) -> None:
    fake.fail_next("converse", "ThrottlingException")

    async def main() -> None:
        async with wrapped(fake, records) as client:
            with pytest.raises(ClientError) as caught:
                await converse(client)
            assert caught.value.response["Error"]["Code"] == "ThrottlingException"

    run(main())
    (record,) = records
    assert record.outcome == "error"
    assert record.error_code == "ThrottlingException"
