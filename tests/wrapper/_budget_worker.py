"""Runs in a separate process: wrapped boto3 clients calling the shared fake Bedrock under one budget."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import boto3

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import from_uri

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Tell me something in a sentence or two, please."}]}]


def _client(endpoint: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def call_until_refused(
    endpoint: str,
    store_uri: str,
    prefix: str,
    limit_usd: str,
    calls: int,
    start: Any,
    results: Any,
    lease: Mapping[str, float] | None = None,
    messages: list[dict[str, Any]] | None = None,
    max_tokens: int = 100,
) -> None:
    """Call until ``calls`` attempts are made; put (granted, refused, leased, nano-USD the records cost,
    settled calls that cost more than their hold)."""
    store = from_uri(store_uri, prefix=prefix)
    client = _client(endpoint)
    budgets = [bb.Budget(name="shared", window="lifetime", limit_usd=limit_usd)]
    records: list[bb.CallRecord] = []
    if lease is None:
        ledger = Ledger(store, budgets)
        metered = bb.wrap(client, ledger=ledger, listeners=[records.append])
    else:
        # Lease options go through wrap(), which builds the ledger itself.
        metered = bb.wrap(client, store=store, budgets=budgets, listeners=[records.append], **lease)
        guard = metered.bedrock_budget_meter.guard
        assert guard is not None
        ledger = guard.ledger
    granted = refused = leased = 0
    try:
        start.wait(60)
        for _ in range(calls):
            try:
                metered.converse(
                    modelId=MODEL, messages=messages or MESSAGES, inferenceConfig={"maxTokens": max_tokens}
                )
            except bb.BudgetExceededError:
                refused += 1
                continue
            granted += 1
            leased += ledger.leases_live > 0
    finally:
        # Closing settles every lease this process still holds before the parent reads the store.
        ledger.close()
        store.close()
        client.close()
    spent = sum(r.cost.total_nanos for r in records if r.cost is not None and r.outcome != "blocked")
    exceeded = sum(n.count for n in ledger.overruns.totals().values())
    results.put((granted, refused, leased, spent, exceeded))


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
    """Admit ``calls`` calls from one lease, then keep it open with a slow stream and wait to be killed.

    The calls settle into the lease, not the store: their spend reaches the store only when the lease
    closes, which the stream in flight prevents."""
    client = _client(endpoint)
    # Unmetered: the first call of a client opens its connection, which on a busy machine can take long
    # enough for the lease's grant to end between the calls below.
    client.converse(modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 100})
    records: list[bb.CallRecord] = []
    metered = bb.wrap(
        client,
        store=from_uri(store_uri, prefix=prefix),
        budgets=[bb.Budget(name="shared", window="lifetime", limit_usd=limit_usd)],
        reservation_ttl=ttl,
        listeners=[records.append],
        **lease,
    )
    guard = metered.bedrock_budget_meter.guard
    assert guard is not None
    for _ in range(calls):
        metered.converse(modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 100})
    stream = metered.converse_stream(
        modelId=slow_model, messages=MESSAGES, inferenceConfig={"maxTokens": 100}
    )["stream"]
    next(iter(stream))
    settled = sum(r.cost.total_nanos for r in records if r.cost is not None)
    ready.put((settled, len(records), guard.ledger.leases_live))
    time.sleep(120)  # the test kills this process long before
