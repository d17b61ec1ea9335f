"""Runs in a separate process: a wrapped aiobotocore client calling the shared fake Bedrock under one budget,
many calls at once on one event loop (the async twin of tests/wrapper/_budget_worker.py)."""

from __future__ import annotations

import asyncio
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
    concurrency: int = 8,
) -> None:
    """Make ``calls`` attempts, ``concurrency`` at a time; put (granted, refused, 0, nano-USD the records
    cost, settled calls that cost more than their hold), as the sync worker does, and ``"async"``."""
    outcome = asyncio.run(_calls(endpoint, store_uri, prefix, limit_usd, calls, start, concurrency))
    results.put((*outcome, "async"))


async def _calls(
    endpoint: str, store_uri: str, prefix: str, limit_usd: str, calls: int, start: Any, concurrency: int
) -> tuple[int, int, int, int, int]:
    budgets = [bb.Budget(name="shared", window="lifetime", limit_usd=limit_usd)]
    ledger = AsyncLedger(store_uri, budgets, store_options={"prefix": prefix})
    records: list[bb.CallRecord] = []
    granted = refused = 0
    session = get_session()
    async with session.create_client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ) as raw:
        client = bb.wrap(raw, ledger=ledger, listeners=[records.append])
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
    await ledger.aclose()
    spent = sum(r.cost.total_nanos for r in records if r.cost is not None and r.outcome != "blocked")
    exceeded = sum(n.count for n in ledger.overruns.totals().values())
    return granted, refused, 0, spent, exceeded
