"""What an aioboto3 user gets: the versions aioboto3 pins, exact records from its clients, streams settled
once, attribution per task, and instrument() metering the clients its Session creates."""

from __future__ import annotations

import asyncio
import collections.abc
import json
from typing import Any

import aioboto3
import aiobotocore
import botocore
import botocore.session
import pytest
import wrapt
from aiobotocore.client import AioBaseClient

import bedrock_budget as bb
from bedrock_budget.dependencies import require_async, version_tuple
from bedrock_budget.pipeline.operations import BILLABLE
from bedrock_budget.pricing import default_price_table
from bedrock_budget.testing import FakeBedrock, UsageSpec
from bedrock_budget.wrapper.async_proxy import AsyncBudgetedClient
from bedrock_budget.wrapper.async_streams import AsyncMeteredEventStream
from bedrock_budget.wrapper.proxy_base import ProxyBase
from conftest import HAIKU, MESSAGES, Records, client, converse, run


def release(module: Any) -> tuple[int, ...]:
    numbers = version_tuple(module.__version__)
    assert numbers is not None, module.__version__
    return numbers


def test_the_venv_is_what_aioboto3_pins() -> None:
    """The point of this venv: if aioboto3 moves on, the check says so instead of testing something else."""
    assert release(aioboto3)[:2] == (15, 5)
    assert release(aiobotocore)[:3] == (2, 25, 1)
    assert release(botocore)[:2] == (1, 40)
    assert release(wrapt)[0] == 1
    assert not hasattr(wrapt, "BaseObjectProxy")
    assert issubclass(ProxyBase, wrapt.ObjectProxy)
    require_async()  # in range: no DependencyVersionError


def test_this_botocore_has_every_operation_we_meter() -> None:
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    names = set(model.operation_names)
    assert {operation.name for operation in BILLABLE.values()} <= names
    assert "CountTokens" in names  # what count_tokens=True calls


def test_a_wrapped_client_is_the_client_on_wrapt_1(fake: FakeBedrock, records: Records) -> None:
    async def main() -> None:
        async with client(fake) as raw:
            bedrock = bb.wrap(raw, listeners=[records])
            assert type(bedrock) is AsyncBudgetedClient
            assert isinstance(bedrock, AioBaseClient)
            assert bedrock.__class__ is type(raw)
            assert bb.unwrap(bedrock) is raw
            assert bedrock.meta.region_name == fake.region
            assert bedrock.exceptions.ThrottlingException is raw.exceptions.ThrottlingException
            # wrapt 1's ObjectProxy forwards __iter__; our base takes it away, as wrapt 2's does.
            assert not isinstance(bedrock, collections.abc.Iterable)
            with pytest.raises(TypeError, match="not iterable"):
                iter(bedrock)
        async with client(fake) as raw, bb.wrap(raw, listeners=[records]) as bedrock:
            assert type(bedrock) is AsyncBudgetedClient
            await converse(bedrock)
        assert len(records) == 1

    run(main())


def test_converse_gives_one_exact_record_per_task(fake: FakeBedrock, records: Records) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))

    async def one(bedrock: Any, user: str) -> Any:
        with bb.attribute(user=user):
            await asyncio.sleep(0)
            return await converse(bedrock)

    async def main() -> list[Any]:
        async with client(fake) as raw:
            bedrock = bb.wrap(raw, listeners=[records], attribution={"app": "aioboto3"})
            pending = one(bedrock, "u-0")
            await asyncio.sleep(0.01)
            assert records == []  # nothing at coroutine creation
            assert fake.request_count == 0
            return await asyncio.gather(pending, *(one(bedrock, f"u-{n}") for n in range(1, 5)))

    responses = run(main())
    assert len(records) == 5
    expected = default_price_table().price(HAIKU, bb.Usage(input_tokens=12, output_tokens=30))
    by_id = {record.request_id: record for record in records}
    assert set(by_id) == {response["ResponseMetadata"]["RequestId"] for response in responses}
    for record in records:
        assert record.outcome == "ok"
        assert not record.estimated
        assert not record.partial
        assert (record.usage.input_tokens, record.usage.output_tokens) == (12, 30)
        assert record.cost is not None
        assert record.cost.total_usd == expected.total_usd
    assert sorted(record.attribution["user"] for record in records) == [f"u-{n}" for n in range(5)]
    assert {record.attribution["app"] for record in records} == {"aioboto3"}


@pytest.mark.parametrize("model", [HAIKU, "amazon.titan-image-generator-v2:0"])
def test_invoke_model_is_exact_and_its_body_reads_as_before(
    model: str, fake: FakeBedrock, records: Records
) -> None:
    """Anthropic's usage comes from headers (body untouched); Titan Image's from the body (read first,
    handed back unread)."""
    body = {
        HAIKU: {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": MESSAGES},
        "amazon.titan-image-generator-v2:0": {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "a lighthouse"},
            "imageGenerationConfig": {"numberOfImages": 2, "width": 512, "height": 512},
        },
    }[model]
    fake.set_usage(model, UsageSpec(input_tokens=20, output_tokens=7))

    async def main() -> dict[str, Any]:
        async with client(fake) as raw:
            response = await bb.wrap(raw, listeners=[records]).invoke_model(
                modelId=model, body=json.dumps(body)
            )
            assert len(records) == 1
            result: dict[str, Any] = json.loads(await response["body"].read())
            return result

    result = run(main())
    assert result
    (record,) = records
    assert record.outcome == "ok"
    assert not record.estimated
    assert record.cost is not None
    assert record.cost.total_usd > 0


async def _open(bedrock: Any, operation: str) -> Any:
    if operation == "converse_stream":
        response = await bedrock.converse_stream(
            modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 50}
        )
        return response["stream"]
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": MESSAGES})
    return (await bedrock.invoke_model_with_response_stream(modelId=HAIKU, body=body))["body"]


STREAMS = ["converse_stream", "invoke_model_with_response_stream"]


@pytest.mark.parametrize("operation", STREAMS)
def test_a_stream_read_to_the_end_settles_once_exactly(
    operation: str, fake: FakeBedrock, records: Records
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=40, output_tokens=20))

    async def main() -> None:
        async with client(fake) as raw:
            stream = await _open(bb.wrap(raw, listeners=[records]), operation)
            assert type(stream) is AsyncMeteredEventStream
            assert records == []
            assert [event async for event in stream]
            await stream.aclose()

    run(main())
    (record,) = records
    assert (record.outcome, record.partial, record.estimated) == ("ok", False, False)
    assert (record.usage.input_tokens, record.usage.output_tokens) == (40, 20)
    expected = default_price_table().price(HAIKU, bb.Usage(input_tokens=40, output_tokens=20))
    assert record.cost is not None
    assert record.cost.total_usd == expected.total_usd


@pytest.mark.parametrize("operation", STREAMS)
def test_a_stream_cancelled_half_way_settles_once(
    operation: str, fake: FakeBedrock, records: Records
) -> None:
    fake.configure(HAIKU, usage=UsageSpec(input_tokens=40, output_tokens=20), latency=0.5, stream_deltas=10)

    async def main() -> None:
        async with client(fake) as raw:
            bedrock = bb.wrap(raw, listeners=[records])
            first = asyncio.Event()
            streams: list[Any] = []

            async def read() -> None:
                streams.append(await _open(bedrock, operation))
                async for _ in streams[0]:
                    first.set()

            task = asyncio.create_task(read())
            await first.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert len(records) == 1  # settled by the cancellation, before any collection
            streams[0].close()
            await streams[0].aclose()

    run(main())
    (record,) = records
    assert (record.outcome, record.partial) == ("partial", True)
    assert record.usage.input_tokens > 0


def test_instrument_meters_aioboto3_clients_created_afterwards(fake: FakeBedrock, records: Records) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))

    async def main() -> None:
        async with client(fake) as before:
            bb.instrument(listeners=[records])
            async with client(fake) as bedrock, client(fake, "s3") as s3:
                assert type(bedrock) is AsyncBudgetedClient
                assert type(s3) is not AsyncBudgetedClient
                await converse(bedrock)
                await converse(before)  # created before instrument(): not metered
                assert len(records) == 1
                bb.uninstrument()
                async with client(fake) as after:
                    assert type(after) is not AsyncBudgetedClient
                    await converse(after)
                await converse(bedrock)  # a metered client stays metered
        assert len(records) == 2

    run(main())
    for record in records:
        assert (record.outcome, record.estimated) == ("ok", False)
        assert (record.usage.input_tokens, record.usage.output_tokens) == (12, 30)
        assert record.request_id
