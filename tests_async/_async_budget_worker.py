"""Runs in a separate process: a wrapped aiobotocore client calling the shared fake Bedrock under one budget,
many calls at once on one event loop (the async twin of tests/wrapper/_budget_worker.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiobotocore.session import get_session

import bedrock_budget as bb
from bedrock_budget.budgets import AsyncLedger

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Tell me something in a sentence or two, please."}]}]


def call_until_refused(
    endpoint: str,
    store_uri: str,
    prefix: str,
    limit_usd: str,
    calls: int,
    start: Any,
    results: Any,
    lease: Mapping[str, float] | None = None,
    concurrency: int = 8,
) -> None:
    """Make ``calls`` attempts, ``concurrency`` at a time; put (granted, refused, leases taken, nano-USD the
    records cost, settled calls that cost more than their hold), as the sync worker does, and ``"async"``.
    (Leases taken, not calls granted while one was live: calls in flight together often outlast a short
    lease, so that count says little here.)"""
    outcome = asyncio.run(_calls(endpoint, store_uri, prefix, limit_usd, calls, start, lease, concurrency))
    results.put((*outcome, "async"))


def _raw_client(endpoint: str) -> Any:
    return get_session().create_client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _ledger_of(client: Any) -> AsyncLedger:
    ledger = client.bedrock_budget_meter.guard.ledger
    assert isinstance(ledger, AsyncLedger)
    return ledger


async def _calls(
    endpoint: str,
    store_uri: str,
    prefix: str,
    limit_usd: str,
    calls: int,
    start: Any,
    lease: Mapping[str, float] | None,
    concurrency: int,
) -> tuple[int, int, int, int, int]:
    budgets = [bb.Budget(name="shared", window="lifetime", limit_usd=limit_usd)]
    records: list[bb.CallRecord] = []
    granted = refused = 0
    async with _raw_client(endpoint) as raw:
        if lease is None:
            ledger = AsyncLedger(store_uri, budgets, store_options={"prefix": prefix})
            client = bb.wrap(raw, ledger=ledger, listeners=[records.append])
        else:
            # Lease options go through wrap(), which builds the ledger itself.
            store = f"{store_uri}?prefix={prefix}"
            client = bb.wrap(raw, store=store, budgets=budgets, listeners=[records.append], **lease)
            ledger = _ledger_of(client)
        left = iter(range(calls))

        async def worker() -> None:
            nonlocal granted, refused
            for _ in left:
                try:
                    await client.converse(
                        modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 100}
                    )
                except bb.BudgetExceededError:
                    refused += 1
                    continue
                granted += 1

        await asyncio.to_thread(start.wait, 60)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    # Closing settles every lease this process still holds before the parent reads the store.
    await ledger.aclose()
    spent = sum(r.cost.total_nanos for r in records if r.cost is not None and r.outcome != "blocked")
    exceeded = sum(n.count for n in ledger.overruns.totals().values())
    return granted, refused, ledger.leases_taken, spent, exceeded


def lease_then_hold(
    endpoint: str,
    store_uri: str,
    prefix: str,
    limit_usd: str,
    ttl: float,
    lease: Mapping[str, float],
    slow_model: str,
    calls: int,
    ready: Any,
) -> None:
    """Admit ``calls`` calls from one lease, then keep it open with a slow stream and wait to be killed
    (the async twin of the sync worker's ``lease_then_hold``)."""
    held = _lease_then_hold(endpoint, store_uri, prefix, limit_usd, ttl, lease, slow_model, calls, ready)
    asyncio.run(held)


async def _lease_then_hold(
    endpoint: str,
    store_uri: str,
    prefix: str,
    limit_usd: str,
    ttl: float,
    lease: Mapping[str, float],
    slow_model: str,
    calls: int,
    ready: Any,
) -> None:
    records: list[bb.CallRecord] = []
    async with _raw_client(endpoint) as raw:
        # Unmetered: the first call of a client opens its connection, which on a busy machine can take long
        # enough for the lease's grant to end between the calls below.
        await raw.converse(modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 100})
        client = bb.wrap(
            raw,
            store=f"{store_uri}?prefix={prefix}",
            budgets=[bb.Budget(name="shared", window="lifetime", limit_usd=limit_usd)],
            reservation_ttl=ttl,
            listeners=[records.append],
            **lease,
        )
        for _ in range(calls):
            await client.converse(modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 100})
        response = await client.converse_stream(
            modelId=slow_model, messages=MESSAGES, inferenceConfig={"maxTokens": 100}
        )
        stream = response["stream"]
        await anext(aiter(stream))
        settled = sum(r.cost.total_nanos for r in records if r.cost is not None)
        ready.put((settled, len(records), _ledger_of(client).leases_live))
        await asyncio.sleep(120)  # the test kills this process long before
