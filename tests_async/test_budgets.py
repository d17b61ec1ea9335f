"""Budgets on async clients, against the memory store, the real Redis and the real Cluster: refusals raise
before Bedrock sees a request, every call's spend lands in the store exactly once (spend = records), streams
settle once however they end, and the outage policy and journal work as on the sync path."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import AsyncLedger, Budget, published
from bedrock_budget.budgets.compiled import current_ref
from bedrock_budget.errors import BudgetExceededError, ConfigurationError, StoreUnavailableError
from bedrock_budget.stores import from_uri
from bedrock_budget.stores.base import CounterState
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import HAIKU, MESSAGES, Records, converse, raw_client, run, wrapped

# A Haiku Converse with maxTokens=64 and usage 12 in / 30 out costs far less than a cent; its worst case
# (the bound on input plus 64 output tokens) a little more.
ROOMY = Budget("daily", limit_usd="5")


def ledger_of(client: Any) -> AsyncLedger:
    ledger = client.bedrock_budget_meter.guard.ledger
    assert isinstance(ledger, AsyncLedger)
    return ledger


async def state(ledger: AsyncLedger, budget: Budget, scope: dict[str, str] | None = None) -> CounterState:
    ref = current_ref(budget, scope or {}, time.time())
    (found,) = await ledger.store.read([ref], now_ms=int(time.time() * 1000))
    return found


def spent_by_records(records: Records) -> int:
    return sum(record.cost.total_nanos for record in records if record.cost is not None)


def test_spend_lands_once_and_matches_the_records(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))

    async def main() -> None:
        async with wrapped(fake, records, store=store_uri, budgets=[ROOMY]) as client:
            ledger = ledger_of(client)
            await asyncio.gather(*(converse(client) for _ in range(20)))
            response = await client.converse_stream(modelId=HAIKU, messages=MESSAGES)
            async for _ in response["stream"]:
                pass
            assert await ledger.flush() == 0
            found = await state(ledger, ROOMY)
            assert found.held_usd == 0
            assert found.active == 0
            assert found.spent_usd == spent_by_records(records) > 0
            await ledger.aclose()

    run(main())
    assert len(records) == 21
    assert all(record.outcome == "ok" and not record.estimated for record in records)


def test_a_refusal_raises_before_bedrock_sees_a_request(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    tiny = Budget("tiny", limit_usd="0.000001")

    async def main() -> None:
        async with wrapped(fake, records, store=store_uri, budgets=[tiny]) as client:
            with pytest.raises(BudgetExceededError) as refused:
                await converse(client)
            assert refused.value.budget == "tiny"
            with pytest.raises(BudgetExceededError):
                await client.converse_stream(modelId=HAIKU, messages=MESSAGES)
            with pytest.raises(BudgetExceededError):
                await client.invoke_model(
                    modelId=HAIKU,
                    body=b'{"anthropic_version":"bedrock-2023-05-31","max_tokens":64,"messages":[]}',
                )
            ledger = ledger_of(client)
            found = await state(ledger, tiny)
            assert (found.spent_usd, found.held_usd) == (0, 0)
            await ledger.aclose()

    run(main())
    assert fake.request_count == 0
    assert [record.outcome for record in records] == ["blocked"] * 3


def test_sequential_calls_stop_at_the_limit(fake: FakeBedrock, records: Records, store_uri: str) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))
    small = Budget("small", limit_usd="0.002")

    async def main() -> None:
        async with wrapped(fake, records, store=store_uri, budgets=[small]) as client:
            ledger = ledger_of(client)
            refused = 0
            for _ in range(40):
                try:
                    await converse(client)
                except BudgetExceededError:
                    refused += 1
                await ledger.flush()
            assert refused > 0
            found = await state(ledger, small)
            assert found.spent_usd == spent_by_records(records) <= small.limit_nanos
            await ledger.aclose()

    run(main())
    assert fake.request_count == len([r for r in records if r.outcome == "ok"])


def test_a_stream_cancelled_half_way_settles_once_and_holds_nothing(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    fake.configure(HAIKU, usage=UsageSpec(input_tokens=12, output_tokens=30), stream_deltas=20)

    async def main() -> None:
        async with wrapped(fake, records, store=store_uri, budgets=[ROOMY]) as client:
            ledger = ledger_of(client)
            started = asyncio.Event()

            async def read() -> None:
                response = await client.converse_stream(modelId=HAIKU, messages=MESSAGES)
                async for _ in response["stream"]:
                    started.set()
                    await asyncio.sleep(0.05)

            task = asyncio.create_task(read())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Cancelled between events (in the sleep): the stream is abandoned, and settles when collected.
            del task
            gc.collect()
            await asyncio.sleep(0.01)
            await ledger.flush()
            found = await state(ledger, ROOMY)
            assert (found.held_usd, found.active) == (0, 0)
            assert found.spent_usd == spent_by_records(records) > 0
            await ledger.aclose()

    run(main())
    (record,) = records
    assert record.outcome == "partial"


def test_a_failed_call_releases_its_hold(fake: FakeBedrock, records: Records, store_uri: str) -> None:
    fake.fail_next("Converse", "ThrottlingException")

    async def main() -> None:
        async with wrapped(fake, records, store=store_uri, budgets=[ROOMY]) as client:
            ledger = ledger_of(client)
            with pytest.raises(client.exceptions.ThrottlingException):
                await converse(client)
            await ledger.flush()
            found = await state(ledger, ROOMY)
            assert (found.spent_usd, found.held_usd, found.active) == (0, 0, 0)
            await ledger.aclose()

    run(main())
    assert [record.outcome for record in records] == ["error"]


def test_downgrade_on_the_async_path(fake: FakeBedrock, records: Records) -> None:
    sonnet = "anthropic.claude-3-5-sonnet-20241022-v2:0"
    budget = Budget("cheap", limit_usd="0.0005", action="downgrade", downgrade_to=HAIKU, model=sonnet)

    async def main() -> None:
        async with wrapped(fake, records, budgets=[budget]) as client:
            await converse(client, model=sonnet)
            await ledger_of(client).aclose()

    run(main())
    (record,) = records
    assert record.downgraded_from == sonnet
    assert record.model_id == HAIKU
    assert fake.calls("Converse", model=HAIKU)


def test_outage_policies(fake: FakeBedrock, records: Records) -> None:
    dead = "redis://127.0.0.1:1/0?connect_timeout=0.2&socket_timeout=0.2&retries=0"

    async def main() -> None:
        async with wrapped(fake, records, store=dead, budgets=[ROOMY]) as client:
            with pytest.raises(StoreUnavailableError):
                await converse(client)
            await ledger_of(client).aclose()
        assert fake.request_count == 0
        async with wrapped(fake, records, store=dead, budgets=[ROOMY], on_store_error="allow") as client:
            ledger = ledger_of(client)
            await converse(client)
            await converse(client)  # the circuit is open: fails fast, still allowed
            assert await ledger.flush() == 2  # journalled, not lost
            assert ledger.journal_depth == 2
            assert ledger.store_errors >= 2
            await ledger.aclose()

    run(main())
    assert [record.outcome for record in records] == ["blocked", "ok", "ok"]


def test_unsupported_options_are_refused(fake: FakeBedrock, records: Records) -> None:
    async def main() -> None:
        async with raw_client(fake) as raw:
            for options in ({"settle_mode": "sync"}, {"lease_fraction": 1.5}):
                with pytest.raises(ConfigurationError):
                    bb.wrap(raw, budgets=[ROOMY], **options)
            with pytest.raises(ConfigurationError):
                bb.wrap(raw, ledger=bb.budgets.Ledger("memory://", [ROOMY]))
            with pytest.raises(ConfigurationError, match="published in a store"):
                bb.wrap(raw, budgets="store")

    run(main())


def test_budgets_published_in_the_store_are_followed(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    if store_uri.startswith("memory"):
        store: Any = MemoryStore()  # memory:// is one per process: the test and the client share this one
    else:
        store = from_uri(store_uri)
    published.publish(store, [Budget("all", window="lifetime", limit_usd="0.0000001")])

    async def main() -> None:
        live = bb.StoreBudgets(refresh_seconds=0.1)
        async with wrapped(
            fake, records, store=store if isinstance(store, MemoryStore) else store_uri, budgets=live
        ) as client:
            ledger = ledger_of(client)
            assert ledger.definitions_version == 1
            with pytest.raises(BudgetExceededError):
                await converse(client)
            assert fake.request_count == 0  # refused before any I/O
            published.set_limit(store, "all", limit_usd="10")
            deadline = time.monotonic() + 5
            while ledger.definitions_version != 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # the follower's thread applies it; the loop stays free
            await converse(client)
            assert fake.request_count == 1
            await ledger.aclose()

    try:
        run(main())
    finally:
        store.close()
    assert [record.outcome for record in records] == ["blocked", "ok"]
