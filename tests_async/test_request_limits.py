"""Request limits on async clients: tasks racing one ``limit_requests: 50`` through wrapped aiobotocore
clients admit exactly 50 calls, Bedrock sees exactly those, a call that fails before inference gives its
request back, and the store's count equals the calls made; async processes racing on Redis and the Cluster
admit exactly the limit too (the sync race of tests/stores/test_request_limit_races.py, with async
ledgers)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from backends import delete_prefix
from bedrock_budget.budgets import AsyncLedger, Budget
from bedrock_budget.errors import BudgetExceededError
from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import HAIKU, Records, converse, run, wrapped
from stores.test_request_limit_races import BUDGET, LIMIT, race_processes

TASKS = 8


async def race(client: Any, attempts: int) -> tuple[int, set[str]]:
    """``attempts`` calls, ``TASKS`` at a time: how many Bedrock answered, and the units refusals named.
    Calls Bedrock fails are neither (their requests are given back)."""
    left = iter(range(attempts))
    answered = 0
    units: set[str] = set()

    async def caller() -> None:
        nonlocal answered
        for _ in left:
            try:
                await converse(client)
            except BudgetExceededError as refused:
                units.add(refused.unit)
                continue
            except client.exceptions.ThrottlingException:
                continue
            answered += 1

    await asyncio.gather(*(caller() for _ in range(TASKS)))
    return answered, units


def ledger_of(client: Any) -> AsyncLedger:
    ledger = client.bedrock_budget_meter.guard.ledger
    assert isinstance(ledger, AsyncLedger)
    return ledger


async def requests_in_store(ledger: AsyncLedger) -> tuple[int, int, int]:
    """Requests made and held, and the calls the budget's tallies saw settle (after queued settlements)."""
    status = await ledger.read(BUDGET["name"])
    return status.spent_requests, status.reserved_requests, status.models.get(HAIKU, {}).get("calls", 0)


def test_tasks_admit_exactly_the_request_limit(fake: FakeBedrock, records: Records, store_uri: str) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))

    async def main() -> None:
        async with wrapped(fake, records, store=store_uri, budgets=[Budget(**BUDGET)]) as client:
            ledger = ledger_of(client)
            answered, units = await race(client, 120)
            assert answered == LIMIT
            assert units == {"requests"}
            assert await requests_in_store(ledger) == (LIMIT, 0, LIMIT)
            await ledger.aclose()

    run(main())
    assert fake.request_count == LIMIT
    assert sum(record.outcome == "ok" for record in records) == LIMIT
    assert sum(record.outcome == "blocked" for record in records) == 120 - LIMIT


def test_a_call_that_fails_gives_its_request_back(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))
    # Bedrock refuses about a third of the requests (20 in all) before inference: those calls hold a
    # request while in flight, then release it.
    fake.fail_randomly(1 / 3, seed=11, operation="Converse", times=20)

    async def main() -> None:
        async with wrapped(fake, records, store=store_uri, budgets=[Budget(**BUDGET)]) as client:
            ledger = ledger_of(client)
            answered, _ = await race(client, 60)
            failed = sum(record.outcome == "error" for record in records)
            assert failed > 0
            await ledger.flush()  # releases are sent by a loop task
            # Every request a failed call held came back: exactly LIMIT calls are answered in all.
            while True:
                try:
                    await converse(client)
                except BudgetExceededError:
                    break
                except client.exceptions.ThrottlingException:
                    continue
                answered += 1
            assert answered == LIMIT
            assert await requests_in_store(ledger) == (LIMIT, 0, LIMIT)
            await ledger.aclose()

    run(main())
    assert sum(record.outcome == "ok" for record in records) == LIMIT
    assert fake.request_count == LIMIT + sum(record.outcome == "error" for record in records)


@pytest.mark.parametrize("service", ["redis", "cluster"])
def test_async_processes_admit_exactly_the_request_limit(
    request: pytest.FixtureRequest, service: str
) -> None:
    # Four processes, four calls in flight in each: sixteen callers racing on one limit.
    uri: str = request.getfixturevalue(f"{service}_url")
    prefix = f"t-async-rq-{uuid.uuid4().hex[:12]}:"
    try:
        race_processes(uri, prefix, "exact", driver="async", processes=4)
    finally:
        delete_prefix(uri, prefix)


def test_a_refusal_names_the_request_limit(fake: FakeBedrock, records: Records) -> None:
    one = Budget("one", window="day", limit_requests=1, limit_usd="1000")

    async def main() -> None:
        async with wrapped(fake, records, budgets=[one]) as client:
            await converse(client)
            with pytest.raises(BudgetExceededError) as refused:
                await converse(client)
            assert (refused.value.budget, refused.value.unit) == ("one", "requests")
            await ledger_of(client).aclose()

    run(main())
    assert fake.request_count == 1
    assert [record.outcome for record in records] == ["ok", "blocked"]
