"""``count_tokens=True`` on async clients: the input is held at Bedrock's own count, asked of the unwrapped
aiobotocore client (awaited) before the reservation, cached by content and falling back to the estimate as
on the sync path. Real aiobotocore over HTTP to the fake Bedrock, whose request log shows what was sent."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from botocore.config import Config
from test_operations import comparable

import bedrock_budget as bb
from bedrock_budget.budgets import AsyncLedger, Budget
from bedrock_budget.budgets.compiled import current_ref
from bedrock_budget.errors import BudgetExceededError
from bedrock_budget.pricing import default_price_table
from bedrock_budget.stores.base import CounterState
from bedrock_budget.testing import FakeBedrock, UsageContext, UsageSpec
from conftest import HAIKU, MESSAGES, Records, raw_client, run, wrapped
from wrapper.test_dense_input_race import PROMPTS

MAX_TOKENS = 64
# Bytes per token the fake bills (and counts) at: what the dense-input race measured for real tokenizers.
DENSITY = {"cjk": 1.39, "code": 2.27}
ROOMY = Budget("all", limit_usd="5", limit_tokens=10_000_000)


def messages_of(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def ledger_of(client: Any) -> AsyncLedger:
    ledger = client.bedrock_budget_meter.guard.ledger
    assert isinstance(ledger, AsyncLedger)
    return ledger


async def state(ledger: AsyncLedger, budget: Budget) -> CounterState:
    await ledger.flush()
    ref = current_ref(budget, {}, time.time())
    (found,) = await ledger.store.read([ref], now_ms=int(time.time() * 1000))
    return found


async def bedrocks_count(fake: FakeBedrock, payload: dict[str, Any]) -> int:
    async with raw_client(fake) as raw:
        answer = await raw.count_tokens(modelId=HAIKU, input=payload)
    tokens = answer["inputTokens"]
    assert isinstance(tokens, int)
    return tokens


async def hold_of_a_stream(
    fake: FakeBedrock, records: Records, messages: list[dict[str, Any]], **options: Any
) -> tuple[Decimal, Decimal]:
    """The tokens and dollars held while a ConverseStream is open (its events unread)."""
    async with wrapped(fake, records, budgets=[ROOMY], **options) as client:
        ledger = ledger_of(client)
        response = await client.converse_stream(
            modelId=HAIKU, messages=messages, inferenceConfig={"maxTokens": MAX_TOKENS}
        )
        status = await ledger.read("all")
        async for _ in response["stream"]:
            pass
        found = await state(ledger, ROOMY)
        assert (found.held_usd, found.active) == (0, 0)
        await ledger.aclose()
    return status.reserved_tokens, status.reserved_usd


def operations(fake: FakeBedrock) -> list[str]:
    return [request.operation for request in fake.requests]


@pytest.mark.parametrize("kind", ["cjk", "code"])
def test_the_hold_is_bedrocks_count_for_dense_input(
    fake: FakeBedrock, records: Records, store_uri: str, kind: str
) -> None:
    fake.set_usage("*", UsageSpec(bytes_per_token=DENSITY[kind]))
    messages = messages_of(PROMPTS[kind])

    async def main() -> tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal], int]:
        counted = await hold_of_a_stream(fake, records, messages, store=store_uri, count_tokens=True)
        assert operations(fake) == ["CountTokens", "ConverseStream"]
        (sent,) = fake.calls("count_tokens")
        assert json.loads(sent.body)["input"] == {"converse": {"messages": messages}}
        estimated = await hold_of_a_stream(fake, records, messages, store=store_uri)
        return counted, estimated, await bedrocks_count(fake, {"converse": {"messages": messages}})

    (tokens, usd), (estimated_tokens, estimated_usd), exact = run(main())
    assert tokens == exact + MAX_TOKENS
    worst = bb.Usage(input_tokens=exact, output_tokens=MAX_TOKENS)
    assert usd == default_price_table().price(HAIKU, worst, region=fake.region).total_usd
    # The estimate is a bound on the bytes: for dense input it holds far more than Bedrock counts.
    assert estimated_tokens > tokens * Decimal("1.3")
    assert estimated_usd > usd
    # Bedrock billed what it counted; the count itself never went through the meter (no record of it).
    assert [(r.operation, r.outcome) for r in records] == [("ConverseStream", "ok")] * 2
    assert records[0].usage.input_tokens == exact


def test_a_repeated_request_is_counted_once(fake: FakeBedrock, records: Records) -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": MAX_TOKENS, "messages": MESSAGES}

    async def main() -> None:
        async with wrapped(fake, records, budgets=[ROOMY], count_tokens=True) as client:
            kwargs = {"messages": MESSAGES, "inferenceConfig": {"maxTokens": MAX_TOKENS}}
            await client.converse(modelId=HAIKU, **kwargs)
            response = await client.converse_stream(modelId=HAIKU, **kwargs)
            async for _ in response["stream"]:
                pass
            await client.converse(modelId=f"us.{HAIKU}", **kwargs)  # the same model through a profile
            for _ in range(2):
                await (await client.invoke_model(modelId=HAIKU, body=json.dumps(body)))["body"].read()
            await client.converse(modelId=HAIKU, messages=messages_of("Something else."))
            await ledger_of(client).aclose()

    run(main())
    assert operations(fake) == [
        "CountTokens",
        "Converse",
        "ConverseStream",
        "Converse",
        "CountTokens",
        "InvokeModel",
        "InvokeModel",
        "CountTokens",
        "Converse",
    ]
    counted = fake.calls("count_tokens")
    sent_body = json.loads(counted[1].body)["input"]["invokeModel"]["body"]
    assert json.loads(base64.b64decode(sent_body)) == body
    assert json.loads(counted[2].body)["input"]["converse"]["messages"] == messages_of("Something else.")
    assert all(record.outcome == "ok" for record in records)
    assert len(records) == 6


@pytest.mark.parametrize(
    "error",
    ["ThrottlingException", "ValidationException", "AccessDeniedException", "InternalServerException"],
)
def test_a_failed_count_holds_the_estimate_and_the_call_proceeds(
    fake: FakeBedrock, records: Records, error: str
) -> None:
    fake.fail_next("count_tokens", error)
    messages = messages_of(PROMPTS["code"])

    async def main() -> tuple[Decimal, Decimal]:
        estimated, _ = await hold_of_a_stream(fake, Records(), messages)
        fake.clear_requests()
        held, _ = await hold_of_a_stream(fake, records, messages, count_tokens=True)
        return estimated, held

    estimated, held = run(main())
    assert held == estimated
    (failed,) = fake.calls("count_tokens")
    assert failed.error_code == error
    assert operations(fake) == ["CountTokens", "ConverseStream"]
    assert [(r.operation, r.outcome) for r in records] == [("ConverseStream", "ok")]


def test_a_model_that_failed_is_not_asked_again_at_once(fake: FakeBedrock, records: Records) -> None:
    # The sync guard's rule, shared: an unsupported model is not asked for an hour, a throttled one for 30 s.
    fake.fail_next("count_tokens", "ValidationException")

    async def main() -> None:
        async with wrapped(fake, records, budgets=[ROOMY], count_tokens=True) as client:
            for index in range(3):
                await client.converse(modelId=HAIKU, messages=messages_of(f"question {index}"))
            await ledger_of(client).aclose()

    run(main())
    assert operations(fake) == ["CountTokens", "Converse", "Converse", "Converse"]
    assert [record.outcome for record in records] == ["ok"] * 3


def test_a_refusal_comes_after_the_count_and_before_the_call(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    tiny = Budget("tiny", limit_usd="0.000001")

    async def main() -> None:
        async with wrapped(fake, records, store=store_uri, budgets=[tiny], count_tokens=True) as client:
            with pytest.raises(BudgetExceededError) as refused:
                await client.converse(modelId=HAIKU, messages=MESSAGES)
            assert refused.value.budget == "tiny"
            body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": MESSAGES}
            with pytest.raises(BudgetExceededError):
                await client.invoke_model_with_response_stream(modelId=HAIKU, body=json.dumps(body))
            found = await state(ledger_of(client), tiny)
            assert (found.spent_usd, found.held_usd, found.active) == (0, 0, 0)
            await ledger_of(client).aclose()

    run(main())
    assert operations(fake) == ["CountTokens", "CountTokens"]
    assert [(record.outcome, record.blocked_by) for record in records] == [("blocked", "tiny")] * 2


def test_cancelled_while_bedrock_counts_holds_nothing(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    counting, answer = threading.Event(), threading.Event()

    def usage(context: UsageContext) -> UsageSpec:
        if context.operation == "CountTokens":
            counting.set()
            answer.wait(10)  # the fake holds the CountTokens answer back until the test lets it go
        return UsageSpec(input_tokens=12, output_tokens=30)

    fake.set_usage("*", usage)

    async def main() -> None:
        async with wrapped(fake, records, store=store_uri, budgets=[ROOMY], count_tokens=True) as client:
            ledger = ledger_of(client)
            call = asyncio.ensure_future(client.converse(modelId=HAIKU, messages=MESSAGES))
            assert await asyncio.to_thread(counting.wait, 10)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            answer.set()
            found = await state(ledger, ROOMY)
            assert (found.spent_usd, found.held_usd, found.active) == (0, 0, 0)
            # A cancellation is not a failure of CountTokens: the same request is counted again.
            await client.converse(modelId=HAIKU, messages=MESSAGES)
            found = await state(ledger, ROOMY)
            assert (found.held_usd, found.active) == (0, 0)
            cost = records[-1].cost
            assert cost is not None
            assert found.spent_usd == cost.total_nanos
            await ledger.aclose()

    run(main())
    assert operations(fake).count("CountTokens") == 2
    assert len(fake.calls("converse")) == 1
    assert [record.outcome for record in records] == ["error", "ok"]
    assert records[0].error_code == "CancelledError"


def test_records_and_refusals_match_the_sync_client(fake: FakeBedrock) -> None:
    """The same calls through a boto3 and an aiobotocore client with ``count_tokens=True``: the same records,
    prices and refusals, under a budget that admits two calls at Bedrock's count and none at the estimate."""
    fake.set_usage("*", UsageSpec(bytes_per_token=DENSITY["code"], default_output_tokens=16))
    messages = messages_of(PROMPTS["code"])
    exact = run(bedrocks_count(fake, {"converse": {"messages": messages}}))
    estimated, _ = run(hold_of_a_stream(fake, Records(), messages))
    limit = 2 * exact + 16 + MAX_TOKENS + 100
    assert limit < estimated  # without CountTokens not even the first call would go out
    tight = Budget("tight", limit_tokens=limit)
    kwargs: dict[str, Any] = {
        "modelId": HAIKU,
        "messages": messages,
        "inferenceConfig": {"maxTokens": MAX_TOKENS},
    }
    body = json.dumps(
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": MAX_TOKENS, "messages": messages}
    )
    fake.clear_requests()

    sync_records, sync_refusals = Records(), []
    sync = bb.wrap(
        fake.client(config=Config(retries={"total_max_attempts": 1})),
        budgets=[tight],
        count_tokens=True,
        listeners=[sync_records],
    )
    sync_calls = [
        lambda: sync.converse(**kwargs),
        lambda: sync.invoke_model(modelId=HAIKU, body=body)["body"].read(),
        lambda: list(sync.converse_stream(**kwargs)["stream"]),
        lambda: list(sync.invoke_model_with_response_stream(modelId=HAIKU, body=body)["body"]),
    ]
    for sync_call in sync_calls:
        try:
            sync_call()
        except BudgetExceededError as exc:
            sync_refusals.append((exc.budget, exc.limit, exc.spent, exc.reserved, exc.requested))
    sync_sent = operations(fake)
    fake.clear_requests()

    async_records = Records()

    async def main() -> list[tuple[object, ...]]:
        refusals: list[tuple[object, ...]] = []
        async with wrapped(fake, async_records, budgets=[tight], count_tokens=True) as client:

            async def invoke_stream() -> None:
                response = await client.invoke_model_with_response_stream(modelId=HAIKU, body=body)
                async for _ in response["body"]:
                    pass

            async def converse_stream() -> None:
                async for _ in (await client.converse_stream(**kwargs))["stream"]:
                    pass

            async def invoke() -> None:
                await (await client.invoke_model(modelId=HAIKU, body=body))["body"].read()

            for async_call in (lambda: client.converse(**kwargs), invoke, converse_stream, invoke_stream):
                try:
                    await async_call()
                except BudgetExceededError as exc:
                    refusals.append((exc.budget, exc.limit, exc.spent, exc.reserved, exc.requested))
                # Settled in the store before the next call, as the sync client's are (settle_mode="sync").
                await ledger_of(client).flush()
            await ledger_of(client).aclose()
        return refusals

    async_refusals = run(main())
    assert operations(fake) == sync_sent
    assert [(r.operation, r.outcome) for r in sync_records] == [
        ("Converse", "ok"),
        ("InvokeModel", "ok"),
        ("ConverseStream", "blocked"),
        ("InvokeModelWithResponseStream", "blocked"),
    ]
    assert [comparable(r) for r in async_records] == [comparable(r) for r in sync_records]
    assert [r.cost for r in async_records] == [r.cost for r in sync_records]
    assert async_refusals == sync_refusals
    assert len(sync_refusals) == 2
    # The refused calls asked for Bedrock's count plus the output cap: the hold CountTokens gave.
    assert sync_refusals[0][4] == exact + MAX_TOKENS
