"""Runs in a spawned process: a service following the budgets published in the store
(``budgets="store"``), calling the fake Bedrock for two users in turn, paced, until told to stop; reports
every call's start, end, user and outcome, and what its records say each user spent."""

from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.config import Config

import bedrock_budget as bb

MESSAGES = [{"role": "user", "content": [{"text": "Write one short line about rivers."}]}]
USERS = ("u-1", "u-17", "u-5")
PACE_SECONDS = 0.005


def call_until_stopped(endpoint: str, store_uri: str, model: str, stop: Any, out: Any) -> None:
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
    calls: list[tuple[float, float, str, str]] = []
    out.put("warm")
    turn = 0
    while not stop.is_set():
        user = USERS[turn % len(USERS)]
        turn += 1
        started = time.monotonic()
        with bb.attribute(user=user):
            try:
                metered.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 32})
                outcome = "ok"
            except bb.BudgetExceededError:
                outcome = "refused"
        calls.append((started, time.monotonic(), user, outcome))
        time.sleep(PACE_SECONDS)
    spent = dict.fromkeys(USERS, 0)
    for record in records:
        if record.outcome == "ok" and record.cost is not None:
            spent[record.attribution["user"]] += record.cost.total_nanos
    guard = metered.bedrock_budget_meter.guard
    version = guard.ledger.definitions_version
    guard.ledger.close()
    out.put({"calls": calls, "spent": spent, "version": version})
