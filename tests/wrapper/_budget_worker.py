"""Runs in a separate process: wrapped boto3 clients calling the shared fake Bedrock under one budget."""

from __future__ import annotations

from typing import Any

import boto3

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import from_uri

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Tell me something in a sentence or two, please."}]}]


def call_until_refused(
    endpoint: str, store_uri: str, prefix: str, limit_usd: str, calls: int, start: Any, results: Any
) -> None:
    store = from_uri(store_uri, prefix=prefix)
    ledger = Ledger(store, [bb.Budget(name="shared", window="lifetime", limit_usd=limit_usd)])
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    metered = bb.wrap(client, ledger=ledger)
    granted = refused = 0
    try:
        start.wait(60)
        for _ in range(calls):
            try:
                metered.converse(modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 100})
            except bb.BudgetExceededError:
                refused += 1
                continue
            granted += 1
    finally:
        ledger.close()
        store.close()
        client.close()
    results.put((granted, refused))
