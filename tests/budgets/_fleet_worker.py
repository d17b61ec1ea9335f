"""Runs in a spawned process: a service following the budgets published in the store
(``budgets="store"``), calling the fake Bedrock for three users in turn, paced, until told to stop, through
a boto3 client or (``driver="async"``) an aiobotocore one; reports every call's start, end, user and
outcome, and what its records say each user spent. ``progress`` (a shared array of two doubles) shows the
test how far it got: calls made, and when the last one started (``time.monotonic``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import bedrock_budget as bb

MESSAGES = [{"role": "user", "content": [{"text": "Write one short line about rivers."}]}]
USERS = ("u-1", "u-17", "u-5")
PACE_SECONDS = 0.02
Call = tuple[float, float, str, str]


def call_until_stopped(
    endpoint: str, store_uri: str, model: str, stop: Any, out: Any, driver: str = "sync", progress: Any = None
) -> None:
    if driver == "async":
        asyncio.run(_async_calls(endpoint, store_uri, model, stop, out, progress))
        return
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    records: list[bb.CallRecord] = []
    metered = bb.wrap(client, store=store_uri, budgets="store", listeners=[records.append])
    calls: list[Call] = []
    out.put("warm")
    while not stop.is_set():
        user = USERS[len(calls) % len(USERS)]
        started = time.monotonic()
        _started(progress, started)
        with bb.attribute(user=user):
            try:
                metered.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 32})
                outcome = "ok"
            except bb.BudgetExceededError:
                outcome = "refused"
        calls.append((started, time.monotonic(), user, outcome))
        time.sleep(PACE_SECONDS)
    ledger = metered.bedrock_budget_meter.guard.ledger
    version = ledger.definitions_version
    ledger.close()
    out.put(_report(calls, records, version))


async def _async_calls(endpoint: str, store_uri: str, model: str, stop: Any, out: Any, progress: Any) -> None:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    records: list[bb.CallRecord] = []
    calls: list[Call] = []
    async with get_session().create_client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=AioConfig(retries={"mode": "standard", "total_max_attempts": 1}),
    ) as raw:
        metered = bb.wrap(raw, store=store_uri, budgets="store", listeners=[records.append])
        out.put("warm")
        while not stop.is_set():
            user = USERS[len(calls) % len(USERS)]
            started = time.monotonic()
            _started(progress, started)
            with bb.attribute(user=user):
                try:
                    await metered.converse(
                        modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 32}
                    )
                    outcome = "ok"
                except bb.BudgetExceededError:
                    outcome = "refused"
            calls.append((started, time.monotonic(), user, outcome))
            await asyncio.sleep(PACE_SECONDS)
        ledger = metered.bedrock_budget_meter.guard.ledger
        version = ledger.definitions_version
        await ledger.aclose()
    out.put(_report(calls, records, version))


def _started(progress: Any, started: float) -> None:
    if progress is not None:
        progress[0] += 1
        progress[1] = started


def _report(calls: list[Call], records: list[bb.CallRecord], version: int | None) -> dict[str, Any]:
    spent = dict.fromkeys(USERS, 0)
    for record in records:
        if record.outcome == "ok" and record.cost is not None:
            spent[record.attribution["user"]] += record.cost.total_nanos
    return {"calls": calls, "spent": spent, "version": version}
