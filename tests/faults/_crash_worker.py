"""Runs in a separate process that the test kills with SIGKILL: it settles a few calls, then opens slow
streams (each holding its worst case against the budget) and waits to be killed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import boto3

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import from_uri

MESSAGES = [{"role": "user", "content": [{"text": "Write one short line about rivers."}]}]


def _bedrock_client(endpoint: str) -> Any:
    """A real boto3 client for the fake Bedrock at ``endpoint``."""
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def settle_then_hold(
    endpoint: str,
    store_uri: str,
    prefix: str,
    limit_usd: str,
    ttl: float,
    model: str,
    slow_model: str,
    calls: int,
    streams: int,
    on_expired_hold: str,
    driver: str,
    ready: Any,
) -> None:
    """Through a boto3 client and the sync ledger, or (``driver="async"``) an aiobotocore client and the
    async ledger, whose loop goes on renewing the streams' holds until the kill."""
    budget = bb.Budget("cap", window="lifetime", limit_usd=limit_usd, on_expired_hold=on_expired_hold)
    if driver == "async":
        args = (endpoint, store_uri, prefix, budget, ttl, model, slow_model, calls, streams, ready)
        asyncio.run(_async_settle_then_hold(*args))
        return
    ledger = Ledger(from_uri(store_uri, prefix=prefix), [budget], reservation_ttl=ttl)
    client = _bedrock_client(endpoint)
    records: list[bb.CallRecord] = []
    metered = bb.wrap(client, ledger=ledger, listeners=[records.append])
    for _ in range(calls):
        metered.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 100})
    held = []
    for _ in range(streams):
        stream = metered.converse_stream(
            modelId=slow_model, messages=MESSAGES, inferenceConfig={"maxTokens": 2000}
        )["stream"]
        next(iter(stream))
        held.append(stream)
    settled = sum(r.cost.total_nanos for r in records if r.cost is not None)
    ready.put((settled, len(records)))
    time.sleep(120)  # the test kills this process long before


async def _async_settle_then_hold(
    endpoint: str,
    store_uri: str,
    prefix: str,
    budget: bb.Budget,
    ttl: float,
    model: str,
    slow_model: str,
    calls: int,
    streams: int,
    ready: Any,
) -> None:
    from aiobotocore.session import get_session

    from bedrock_budget.budgets import AsyncLedger

    ledger = AsyncLedger(store_uri, [budget], reservation_ttl=ttl, store_options={"prefix": prefix})
    records: list[bb.CallRecord] = []
    async with get_session().create_client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ) as raw:
        metered = bb.wrap(raw, ledger=ledger, listeners=[records.append])
        for _ in range(calls):
            await metered.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 100})
        await ledger.flush()  # the settled calls are in the store before the test looks
        held = []
        for _ in range(streams):
            response = await metered.converse_stream(
                modelId=slow_model, messages=MESSAGES, inferenceConfig={"maxTokens": 2000}
            )
            async for _ in response["stream"]:
                break  # one event read; the stream stays open
            held.append(response["stream"])
        settled = sum(r.cost.total_nanos for r in records if r.cost is not None)
        ready.put((settled, len(records)))
        await asyncio.sleep(120)  # the test kills this process long before


def settle_into_the_journal(
    endpoint: str,
    store_uri: str,
    prefix: str,
    journal_path: str,
    mode: str,
    model: str,
    calls: int,
    ready: Any,
) -> None:
    """Makes calls whose settlements stay off the store until the kill: queued for a batch that waits a
    minute (``mode="background"``), or journalled because the store is down (``mode="outage"``)."""
    options: dict[str, Any] = (
        {"settle_mode": "background", "settle_linger": 60.0, "settle_batch": 100_000}
        if mode == "background"
        else {"on_store_error": "allow"}
    )
    ledger = Ledger(
        from_uri(store_uri, prefix=prefix, socket_timeout=0.2, connect_timeout=0.2),
        [
            bb.Budget("cap", window="lifetime", limit_usd="10"),
            bb.Budget("per-user", scope={"user": "*"}, limit_usd="5"),
        ],
        journal_path=journal_path,
        **options,
    )
    client = _bedrock_client(endpoint)
    records: list[bb.CallRecord] = []
    metered = bb.wrap(client, ledger=ledger, listeners=[records.append], attribution={"user": "u1"})
    for _ in range(calls):
        metered.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 100})
    ready.put((sum(r.cost.total_nanos for r in records if r.cost is not None), len(records)))
    time.sleep(120)  # the test kills this process long before
