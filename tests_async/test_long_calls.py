"""Long async calls keep their holds, and async calls nobody finishes give them back (the proofs of
tests/faults/test_long_calls.py, through aiobotocore clients and async ledgers).

The race: one client streams a long answer (three times the TTL) whose worst case holds most of a small
block budget, while a second client, with an async ledger of its own on the same store, sends small calls
as fast as it can on the same loop. The first ledger's loop task renews the stream's hold, so the second
client is refused once the stream's worst case and its own calls fill the budget, and the spend stays at
or under the limit. Then a stream left open and unread: renewed until ``max_call_seconds``, then settled
at its worst case, which gives its capacity back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import bedrock_budget as bb
from backends import delete_prefix
from bedrock_budget.budgets import AsyncLedger
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import HAIKU, MESSAGES, Records, raw_client, run
from faults.conftest import NANOS_PER_USD, recorded_nanos
from faults.test_long_calls import LIMIT, SLOW, long_call_budgets
from polling import async_holds_for, async_wait_until

TTL = 0.75
CALL_SECONDS = 3 * TTL


def shared_store(store_uri: str) -> Any:
    """What two ledgers are given to share one namespace: the URI, or one memory store (``memory://`` is
    one store per ledger)."""
    return MemoryStore() if store_uri == "memory://" else store_uri


async def drain(stream: Any) -> None:
    async for _ in stream:
        pass


def test_a_call_three_times_the_ttl_keeps_its_hold_and_the_budget_holds(
    fake: FakeBedrock, store_uri: str
) -> None:
    # The stream's actual usage is its worst case: the input estimate of a short prompt is above 10
    # tokens, and the answer uses all of maxTokens.
    fake.set_usage(SLOW, UsageSpec(input_tokens=10, output_tokens=1000))
    fake.set_usage(HAIKU, UsageSpec(input_tokens=10, output_tokens=50))
    fake.configure(SLOW, latency=CALL_SECONDS, stream_deltas=12)
    streamer_records, racer_records = Records(), Records()
    store = shared_store(store_uri)

    async def main() -> None:
        streamer = AsyncLedger(store, long_call_budgets(), reservation_ttl=TTL)
        racer = AsyncLedger(store, long_call_budgets(), reservation_ttl=TTL)
        async with raw_client(fake) as long_raw, raw_client(fake) as racing_raw:
            long_client = bb.wrap(
                long_raw, ledger=streamer, listeners=[streamer_records], attribution={"user": "writer"}
            )
            racing_client = bb.wrap(
                racing_raw, ledger=racer, listeners=[racer_records], attribution={"user": "racer"}
            )
            # The fake paces the stream over CALL_SECONDS from the moment the request reaches it.
            started = time.monotonic()
            response = await long_client.converse_stream(
                modelId=SLOW, messages=MESSAGES, inferenceConfig={"maxTokens": 1000}
            )
            held = await racer.read("org")
            assert held.reserved_usd > Decimal("0.015")  # the stream's worst case
            reader = asyncio.create_task(drain(response["stream"]))
            admitted = refused = 0
            while not reader.done():
                try:
                    await racing_client.converse(
                        modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 50}
                    )
                    admitted += 1
                except bb.BudgetExceededError:
                    refused += 1
                    await asyncio.sleep(0.01)
            await reader
            elapsed = time.monotonic() - started
            await streamer.flush()
            final = await racer.read("org")
            assert elapsed >= CALL_SECONDS - 0.01, elapsed  # the call really outlived the TTL three times
            assert [r.outcome for r in streamer_records] == ["ok"]
            assert admitted > 0
            assert refused > 0
            # Everything the racer was admitted into fit beside the stream's hold, all the way through.
            assert recorded_nanos(racer_records) <= (LIMIT - held.reserved_usd) * NANOS_PER_USD
            assert final.reserved_usd == 0
            assert final.spent_usd <= LIMIT
            spent = recorded_nanos(streamer_records) + recorded_nanos(racer_records)
            assert final.spent_usd * NANOS_PER_USD == spent
            assert streamer.holds_renewed >= 2
        await streamer.aclose()
        await racer.aclose()

    try:
        run(main())
    finally:
        if isinstance(store, MemoryStore):
            store.close()


def test_a_leaked_unread_stream_gives_its_capacity_back_after_the_maximum_call_lifetime(
    fake: FakeBedrock, records: Records, redis_url: str
) -> None:
    # On Redis only: the lifetime is the async keeper's rule, whichever store it renews in (the race above
    # runs on every backend).
    fake.set_usage(SLOW, UsageSpec(input_tokens=10, output_tokens=1000))
    fake.configure(SLOW, latency=60.0, stream_deltas=3)  # the first event at once, the rest over a minute
    ttl, lifetime = 0.5, 1.5
    prefix = f"t-async-leak-{uuid.uuid4().hex[:12]}:"
    store_uri = f"{redis_url}?prefix={prefix}"

    async def main() -> None:
        async with raw_client(fake) as raw:
            # Configured the way a user would: through wrap()'s keywords.
            client = bb.wrap(
                raw,
                store=store_uri,
                budgets=[bb.Budget("org", window="lifetime", limit_usd=str(LIMIT))],
                reservation_ttl=ttl,
                max_call_seconds=lifetime,
                listeners=[records],
            )
            ledger = client.bedrock_budget_meter.guard.ledger
            assert isinstance(ledger, AsyncLedger)
            assert ledger.max_call_seconds == lifetime

            async def reserved() -> Decimal:
                return (await ledger.read("org")).reserved_usd

            started = time.monotonic()
            response = await client.converse_stream(
                modelId=SLOW, messages=MESSAGES, inferenceConfig={"maxTokens": 1000}
            )
            stream = response["stream"]
            async for _ in stream:
                break  # read one event, then keep the stream without reading or closing it
            worst = await reserved()
            assert worst > 0

            # Past the TTL the hold is renewed: the call still counts, at every check until then.
            async def still_held() -> bool:
                return await reserved() == worst and records == []

            await async_holds_for(
                still_held, 2 * ttl, message="the unread stream's hold (renewed past the TTL)"
            )
            assert ledger.holds_renewed >= 1

            async def given_back() -> bool:
                return await reserved() == 0

            await async_wait_until(
                given_back, lifetime + 5, message="the leaked stream's hold to be given back"
            )
            elapsed = time.monotonic() - started
            status = await ledger.read("org")
            assert lifetime <= elapsed <= lifetime + 1.5
            # Settled once, at what was held: nobody read it, but Bedrock may have generated all of it.
            assert status.spent_usd == worst
            (record,) = records
            assert record.outcome == "partial"
            assert record.estimated
            assert record.cost is not None
            assert record.cost.total_nanos == worst * NANOS_PER_USD
            assert ledger.overdue_calls == 1
            # Closing it later changes nothing: it was settled once.
            await stream.aclose()
            assert len(records) == 1
            assert (await ledger.read("org")).spent_usd == worst
            await ledger.aclose()

    try:
        run(main())
    finally:
        delete_prefix(redis_url, prefix)
