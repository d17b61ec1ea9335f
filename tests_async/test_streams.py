"""Async streams settle exactly once, by the sync rules: at the last event, on close, on cancellation
mid-stream, on abandonment, on a mid-stream error."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest
from botocore.exceptions import EventStreamError

from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import HAIKU, MESSAGES, Records, run, wrapped

INVOKE_BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": MESSAGES})


async def open_stream(client: Any, operation: str) -> Any:
    if operation == "converse_stream":
        response = await client.converse_stream(
            modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 50}
        )
        return response["stream"]
    response = await client.invoke_model_with_response_stream(modelId=HAIKU, body=INVOKE_BODY)
    return response["body"]


OPERATIONS = ["converse_stream", "invoke_model_with_response_stream"]


@pytest.fixture
def slow_stream(fake: FakeBedrock) -> FakeBedrock:
    """Ten pieces spread over half a second, so a stream can be interrupted half-way."""
    fake.configure(HAIKU, usage=UsageSpec(input_tokens=40, output_tokens=20), latency=0.5, stream_deltas=10)
    fake.configure(HAIKU, first_byte_delay=0.02)
    return fake


@pytest.mark.parametrize("operation", OPERATIONS)
def test_read_to_the_end(operation: str, fake: FakeBedrock, records: Records) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=40, output_tokens=20))

    async def main() -> None:
        async with wrapped(fake, records) as client:
            stream = await open_stream(client, operation)
            assert records == []
            events = [event async for event in stream]
            assert events
            stream.close()  # closing after the end changes nothing

    run(main())
    (record,) = records
    assert record.outcome == "ok"
    assert not record.partial
    assert not record.estimated
    assert (record.usage.input_tokens, record.usage.output_tokens) == (40, 20)
    assert record.time_to_first_token_seconds is not None


@pytest.mark.parametrize("operation", OPERATIONS)
def test_aclose_half_way_twice(operation: str, slow_stream: FakeBedrock, records: Records) -> None:
    async def main() -> None:
        async with wrapped(slow_stream, records) as client:
            stream = await open_stream(client, operation)
            async for _ in stream:
                break
            await stream.aclose()
            await stream.aclose()
            stream.close()

    run(main())
    (record,) = records
    assert record.outcome == "partial"
    assert record.partial
    # Converse streams report usage only in their last event; Anthropic's native stream reports its
    # input count in its first chunk and its output so far in every delta.
    assert record.estimated or operation == "invoke_model_with_response_stream"
    assert record.usage.input_tokens > 0


@pytest.mark.parametrize("operation", OPERATIONS)
def test_break_then_resume_is_charged_for_everything(
    operation: str, fake: FakeBedrock, records: Records
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=40, output_tokens=20))

    async def main() -> None:
        async with wrapped(fake, records) as client:
            stream = await open_stream(client, operation)
            async for _ in stream:
                break
            gc.collect()
            await asyncio.sleep(0.01)  # the first loop's generator is finalized: no settlement yet
            assert records == []
            rest = [event async for event in stream]
            assert rest

    run(main())
    (record,) = records
    assert record.outcome == "ok"
    assert (record.usage.input_tokens, record.usage.output_tokens) == (40, 20)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_cancelled_half_way(operation: str, slow_stream: FakeBedrock, records: Records) -> None:
    async def main() -> None:
        async with wrapped(slow_stream, records) as client:
            first = asyncio.Event()
            streams: list[Any] = []

            async def read() -> None:
                streams.append(await open_stream(client, operation))
                async for event in streams[0]:
                    # Converse's first event (messageStart) carries no text: cancel once some has come.
                    if operation != "converse_stream" or "contentBlockDelta" in event:
                        first.set()

            task = asyncio.create_task(read())
            await first.wait()
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            (record,) = records  # settled by the cancellation itself, before any collection
            assert record.outcome == "partial"
            streams[0].close()  # the caller's connection, as without the wrapper; settles nothing more

    run(main())
    (record,) = records
    assert record.partial
    assert record.estimated or operation == "invoke_model_with_response_stream"
    assert record.usage.input_tokens > 0
    assert record.usage.output_tokens > 0


# An abandoned stream leaves its HTTP connection for the garbage collector, with or without the wrapper, and
# aiohttp warns about it when it is collected.
ABANDONED_CONNECTION = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@ABANDONED_CONNECTION
@pytest.mark.parametrize("operation", OPERATIONS)
def test_cancelled_between_events_settles_on_abandonment(
    operation: str, slow_stream: FakeBedrock, records: Records
) -> None:
    async def main() -> None:
        async with wrapped(slow_stream, records) as client:
            first = asyncio.Event()

            async def read() -> None:
                stream = await open_stream(client, operation)
                async for _ in stream:
                    first.set()
                    await asyncio.sleep(10)  # the cancellation lands here, outside the stream

            task = asyncio.create_task(read())
            await first.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            del task
            for _ in range(3):
                gc.collect()
                await asyncio.sleep(0.01)

    run(main())
    (record,) = records
    assert record.outcome == "partial"
    assert record.partial


@ABANDONED_CONNECTION
@pytest.mark.parametrize("operation", OPERATIONS)
def test_abandoned_unread_and_half_way(operation: str, fake: FakeBedrock, records: Records) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=40, output_tokens=20))

    async def main() -> None:
        async with wrapped(fake, records) as client:
            stream = await open_stream(client, operation)
            del stream
            gc.collect()
            assert len(records) == 1
            stream = await open_stream(client, operation)
            async for _ in stream:
                break
            del stream
            for _ in range(3):
                gc.collect()
                await asyncio.sleep(0.01)
            assert len(records) == 2

    run(main())
    assert [record.outcome for record in records] == ["partial", "partial"]
    assert all(record.partial for record in records)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_error_half_way(operation: str, fake: FakeBedrock, records: Records) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=40, output_tokens=20))
    fake.fail_mid_stream(2, operation=operation, error="modelStreamErrorException")

    async def main() -> None:
        async with wrapped(fake, records) as client:
            stream = await open_stream(client, operation)
            with pytest.raises(EventStreamError):
                async for _ in stream:
                    pass
            stream.close()

    run(main())
    (record,) = records
    assert record.outcome == "partial"
    assert record.partial
    assert record.error_code == "modelStreamErrorException"
