"""Bedrock throttling and 5xx answers retried by aiobotocore (standard mode, no back-off sleeps), on a real
Redis: a call is priced once, on the response that finally arrived; when the retries run out nothing is
charged and the hold is released (the cases of tests/faults/test_bedrock_retries.py, awaited)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import bedrock_budget as bb
from backends import delete_prefix
from bedrock_budget.budgets import AsyncLedger
from bedrock_budget.testing import FakeBedrock
from conftest import HAIKU, MESSAGES, Records, open_on, raw_client, run
from faults.conftest import NANOS_PER_USD, no_backoff, recorded_nanos
from faults.test_bedrock_retries import COST, INVOKE_BODY, OPERATIONS, RETRYABLE, USAGE

__all__ = ["no_backoff"]

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("no_backoff")]


@pytest.fixture
def store_uri(redis_url: str) -> Iterator[str]:
    prefix = f"t-async-retry-{uuid.uuid4().hex[:12]}:"
    yield f"{redis_url}?prefix={prefix}"
    delete_prefix(redis_url, prefix)


@pytest.fixture(scope="module")
def retrying_raw(module_loop: asyncio.Runner, fake_server: FakeBedrock) -> Iterator[Any]:
    """An aiobotocore client that makes up to three attempts, shared by the module's tests."""
    yield from open_on(
        module_loop, raw_client(fake_server, retries={"mode": "standard", "total_max_attempts": 3})
    )


async def call(client: Any, operation: str) -> dict[str, Any]:
    """Make one call and read it to the end, as a caller would."""
    if operation == "converse":
        response: dict[str, Any] = await client.converse(
            modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64}
        )
    elif operation == "converse_stream":
        response = await client.converse_stream(
            modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64}
        )
        [event async for event in response["stream"]]
    elif operation == "invoke_model":
        response = await client.invoke_model(modelId=HAIKU, body=INVOKE_BODY)
        await response["body"].read()
    else:
        response = await client.invoke_model_with_response_stream(modelId=HAIKU, body=INVOKE_BODY)
        [event async for event in response["body"]]
    return response


def new_ledger(store_uri: str) -> AsyncLedger:
    return AsyncLedger(store_uri, [bb.Budget("all", window="lifetime", limit_usd="50")])


@pytest.mark.parametrize("error", RETRYABLE)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_retried_call_is_priced_once_on_the_final_response(
    module_loop: asyncio.Runner,
    fake: FakeBedrock,
    retrying_raw: Any,
    records: Records,
    store_uri: str,
    operation: str,
    error: str,
) -> None:
    fake.set_usage(HAIKU, USAGE)
    fake.fail_next(operation, error, times=2)

    async def main() -> None:
        ledger = new_ledger(store_uri)
        response = await call(bb.wrap(retrying_raw, ledger=ledger, listeners=[records]), operation)
        assert response["ResponseMetadata"]["RetryAttempts"] == 2
        status = await ledger.read("all")
        assert status.spent_usd * NANOS_PER_USD == recorded_nanos(records)
        assert (status.spent_usd, status.reserved_usd, status.active_reservations) == (COST.total_usd, 0, 0)
        await ledger.aclose()

    run(main(), module_loop)
    assert [r.status for r in fake.requests] == [fake.requests[0].status] * 2 + [200]
    (record,) = records
    assert record.outcome == "ok"
    assert record.cost == COST
    assert not record.estimated


@pytest.mark.parametrize("operation", ["converse", "converse_stream"])
def test_retries_exhausted_charge_nothing_and_release_the_hold(
    module_loop: asyncio.Runner,
    fake: FakeBedrock,
    retrying_raw: Any,
    records: Records,
    store_uri: str,
    operation: str,
) -> None:
    fake.fail_next(operation, "ThrottlingException", times=10)

    async def main() -> None:
        ledger = new_ledger(store_uri)
        with pytest.raises(retrying_raw.exceptions.ThrottlingException):
            await call(bb.wrap(retrying_raw, ledger=ledger, listeners=[records]), operation)
        status = await ledger.read("all")
        assert (status.spent_usd, status.reserved_usd, status.active_reservations) == (0, 0, 0)
        await ledger.aclose()

    run(main(), module_loop)
    assert fake.request_count == 3
    (record,) = records
    assert (record.outcome, record.error_code, record.cost) == ("error", "ThrottlingException", None)


def test_random_throttling_under_load(
    module_loop: asyncio.Runner, fake: FakeBedrock, retrying_raw: Any, records: Records, store_uri: str
) -> None:
    fake.set_usage(HAIKU, USAGE)
    fake.fail_randomly(0.6, seed=7, error="ThrottlingException")
    outcomes = {"ok": 0, "error": 0}

    async def main() -> None:
        ledger = new_ledger(store_uri)
        client = bb.wrap(retrying_raw, ledger=ledger, listeners=[records])

        async def one(index: int) -> None:
            try:
                await call(client, OPERATIONS[index % len(OPERATIONS)])
                outcomes["ok"] += 1
            except client.exceptions.ThrottlingException:
                outcomes["error"] += 1

        await asyncio.gather(*(one(index) for index in range(40)))
        status = await ledger.read("all")
        assert status.spent_usd * NANOS_PER_USD == recorded_nanos(records)
        assert (status.reserved_usd, status.active_reservations) == (0, 0)
        assert status.spent_usd == COST.total_usd * outcomes["ok"]
        await ledger.aclose()

    run(main(), module_loop)
    # The seed gives both.
    assert outcomes["ok"]
    assert outcomes["error"]
    assert len(records) == 40
    assert sum(r.outcome == "ok" for r in records) == outcomes["ok"]
    assert all(r.cost == COST for r in records if r.outcome == "ok")
