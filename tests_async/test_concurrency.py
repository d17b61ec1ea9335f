"""Attribution across tasks, and a cancellation storm: hundreds of calls cancelled at random points each
end as exactly one record."""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets.compiled import current_ref
from bedrock_budget.stores.base import CounterState
from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import HAIKU, MESSAGES, Records, converse, run, wrapped


def test_gather_with_different_attribution(fake: FakeBedrock, records: Records) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))
    fake.set_latency(0.02)
    rng = random.Random(7)

    async def main() -> None:
        async with wrapped(fake, records, attribution={"app": "default-app"}) as client:

            async def one(i: int) -> None:
                with bb.attribute(user=f"u{i}", team=f"t{i % 3}"):
                    await asyncio.sleep(rng.random() / 50)
                    if i % 2:
                        await converse(client)
                    else:
                        response = await client.converse_stream(modelId=HAIKU, messages=MESSAGES)
                        async for _ in response["stream"]:
                            await asyncio.sleep(0)

            with bb.attribute(app="gathered"):
                await asyncio.gather(*(one(i) for i in range(40)))
            # Outside every attribute(): the wrap() default again.
            await converse(client)

    run(main())
    assert len(records) == 41
    by_user = {record.attribution.get("user"): record for record in records}
    assert len(by_user) == 41
    for i in range(40):
        record = by_user[f"u{i}"]
        assert record.attribution == {"user": f"u{i}", "team": f"t{i % 3}", "app": "gathered"}
        assert record.operation == ("Converse" if i % 2 else "ConverseStream")
        assert (record.usage.input_tokens, record.usage.output_tokens) == (12, 30)
    assert by_user[None].attribution == {"app": "default-app"}


def test_attribution_changed_after_a_task_started_does_not_leak(fake: FakeBedrock, records: Records) -> None:
    fake.set_latency(0.05)

    async def main() -> None:
        async with wrapped(fake, records) as client:
            with bb.attribute(user="first"):
                task = asyncio.create_task(converse(client))
            with bb.attribute(user="second"):
                await asyncio.sleep(0)
                await converse(client)
            await task

    run(main())
    assert sorted(record.attribution["user"] for record in records) == ["first", "second"]


INVOKE_BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": MESSAGES})


# Hundreds of aborted requests and abandoned streams leave connections for the collector, which aiohttp
# warns about, wrapped or not.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_cancellation_storm_gives_exactly_one_record_per_call(fake: FakeBedrock, records: Records) -> None:
    storm(fake, records)


# The storm again with budgets on the real Redis and Cluster: every hold is settled or released, and the
# store's spend is exactly what the records cost. With capacity leases too: calls cancelled while a lease
# is requested, while admitted from one, or while waiting for another call's request.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize(
    "lease", [{}, {"lease_fraction": 0.01, "lease_seconds": 0.05}], ids=["exact", "leased"]
)
def test_cancellation_storm_with_budgets_leaves_no_hold(
    fake: FakeBedrock, records: Records, store_uri: str, lease: dict[str, float]
) -> None:
    budget = bb.Budget("storm", limit_usd="10")
    found: list[CounterState] = []

    async def check(client: Any) -> None:
        ledger = client.bedrock_budget_meter.guard.ledger
        assert (ledger.leases_taken > 1) == bool(lease)
        assert await ledger.flush() == 0
        ref = current_ref(budget, {}, time.time())
        found.extend(await ledger.store.read([ref], now_ms=int(time.time() * 1000)))
        await ledger.aclose()

    storm(fake, records, check, store=store_uri, budgets=[budget], **lease)
    (state,) = found
    assert state.held_usd == 0
    assert state.active == 0
    assert state.spent_usd == sum(r.cost.total_nanos for r in records if r.cost is not None) > 0


def storm(
    fake: FakeBedrock, records: Records, after: Callable[[Any], Awaitable[None]] | None = None, **options: Any
) -> None:
    """300 calls of three kinds, most cancelled at a random point; ``after(client)`` runs once they are
    over and collected, before the client closes."""
    fake.configure(HAIKU, usage=UsageSpec(input_tokens=40, output_tokens=20), latency=0.3, stream_deltas=8)
    fake.configure(HAIKU, first_byte_delay=0.01)
    rng = random.Random(20261204)
    calls = 300
    started: set[int] = set()
    finished: set[int] = set()

    async def main() -> None:
        async with wrapped(fake, records, **options) as client:
            midway = {i: asyncio.Event() for i in range(calls)}

            async def one(i: int, kind: int) -> None:
                with bb.attribute(user=f"c{i}"):
                    await asyncio.sleep(rng.random() / 20)
                    started.add(i)  # no await between this and the call's first step
                    if kind == 0:
                        await converse(client, model=HAIKU)
                    elif kind == 1:
                        response = await client.converse_stream(modelId=HAIKU, messages=MESSAGES)
                        async for _ in response["stream"]:
                            midway[i].set()
                            await asyncio.sleep(rng.random() / 100)
                    else:
                        response = await client.invoke_model_with_response_stream(
                            modelId=HAIKU, body=INVOKE_BODY
                        )
                        async for _ in response["body"]:
                            midway[i].set()
                    finished.add(i)

            tasks = [asyncio.create_task(one(i, i % 3)) for i in range(calls)]

            async def cancel_midway(i: int) -> None:
                await midway[i].wait()
                await asyncio.sleep(rng.random() / 50)
                tasks[i].cancel()

            # One call in ten is cancelled while its stream is being read, whatever the machine's speed;
            # most others each at their own random moment: before they start, while they wait for a
            # connection or for Bedrock, or mid-stream.
            loop = asyncio.get_running_loop()
            watchers = []
            for i, task in enumerate(tasks):
                if i % 10 in (1, 2):
                    watchers.append(asyncio.create_task(cancel_midway(i)))
                elif rng.random() < 0.8:
                    loop.call_later(rng.random() * 1.5, task.cancel)
            await asyncio.gather(*tasks, return_exceptions=True)
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            tasks.clear()
            for _ in range(5):  # let the loop finalize abandoned stream generators
                gc.collect()
                await asyncio.sleep(0.02)
            if after is not None:
                await after(client)

    run(main())
    gc.collect()
    counts = Counter(record.attribution["user"] for record in records)
    assert sorted(counts) == sorted(f"c{i}" for i in started)
    duplicated = {user: n for user, n in counts.items() if n != 1}
    assert duplicated == {}
    # A spread of fates, so the storm tested something: finished, cut off mid-stream, and refused before
    # any response (cancelled while waiting for a connection or for Bedrock).
    outcomes = Counter(record.outcome for record in records)
    assert outcomes["ok"] >= 1, (outcomes, Counter(r.error_code for r in records))
    assert outcomes["partial"] >= 30
    assert outcomes["error"] >= 5
    assert {f"c{i}" for i in finished} <= {r.attribution["user"] for r in records if r.outcome == "ok"}
    # Every call that got a response carries its own request id.
    ids = [r.request_id for r in records if r.request_id is not None]
    assert len(ids) == len(set(ids))
