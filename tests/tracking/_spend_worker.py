"""Runs in a separate process (or a thread): wrapped boto3 clients with no budgets making mixed calls
against the shared fake Bedrock, tracked in the store; reports what its call records cost."""

from __future__ import annotations

import json
import random
from typing import Any

import boto3

import bedrock_budget as bb
from bedrock_budget.stores import Store, from_uri

HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-micro-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Say something short."}]}]
USERS = ["u-1", "u-2", "u-3", "u-4", "u-5", None]
APPS = ["chat", "search", "legal"]


def client_for(endpoint: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def one_call(client: Any, kind: int) -> None:
    if kind == 0:
        client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 60})
    elif kind == 1:
        stream = client.converse_stream(modelId=NOVA, messages=MESSAGES, inferenceConfig={"maxTokens": 40})
        for _ in stream["stream"]:
            pass
    elif kind == 2:
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 30,
            "messages": [{"role": "user", "content": "hi"}],
        }
        client.invoke_model(modelId=HAIKU, body=json.dumps(body))["body"].read()
    else:
        client.apply_guardrail(
            guardrailIdentifier="gr-1",
            guardrailVersion="1",
            source="INPUT",
            content=[{"text": {"text": "x" * 1200}}],
        )


def mixed_calls(
    endpoint: str,
    store_uri: str | Store,
    prefix: str,
    seed: int,
    calls: int,
    options: dict[str, Any],
    results: Any,
) -> None:
    """``calls`` mixed calls; put (number of settled calls, nano-dollars their records cost)."""
    shared = isinstance(store_uri, Store)
    store = store_uri if isinstance(store_uri, Store) else from_uri(store_uri, prefix=prefix)
    raw = client_for(endpoint)
    records: list[bb.CallRecord] = []
    client = bb.wrap(raw, store=store, listeners=[records.append], **options)
    rng = random.Random(seed)
    try:
        for _ in range(calls):
            user, app = rng.choice(USERS), rng.choice(APPS)
            ids = {"app": app} if user is None else {"user": user, "app": app}
            with bb.attribute(**ids):
                one_call(client, rng.randrange(4))
    finally:
        guard = client.bedrock_budget_meter.guard
        guard.ledger.close()
        if not shared:
            store.close()
        raw.close()
    priced = [r for r in records if r.outcome == "ok"]
    results.put((len(priced), sum(r.cost.total_nanos for r in priced if r.cost is not None)))
