"""Runs in a spawned process: calls the fake Bedrock through a metered boto3 client, paced, until told to
stop, timing every call and the part of it spent in the budget ledger (reserve and settle: what the budget
layer adds to the call); reports the timings, what its records say was spent and the ledger's state.

While it runs it counts, in ``progress`` (shared with the test), the calls it started after its circuit first
opened (``OPENED``: -1 until it opens) and the calls that went through after it closed again (``CLOSED_OK``),
so the test waits for those instead of for fixed periods."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import from_uri

MESSAGES = [{"role": "user", "content": [{"text": "Write one short line about rivers."}]}]
PACE_SECONDS = 0.01
#: Calls made before the worker says it is warm (the test freezes the store only then).
WARM_CALLS = 25
#: Indexes in ``progress``.
OPENED = 0
CLOSED_OK = 1


def call_until_stopped(
    endpoint: str, store_uri: str, policy: str, model: str, stop: Any, progress: Any, ready: Any
) -> None:
    store = from_uri(store_uri)
    ledger = Ledger(
        store,
        [bb.Budget("all", window="lifetime", limit_usd="1000")],
        on_store_error=policy,  # type: ignore[arg-type]
    )
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    in_ledger = [0.0]

    def timed(method: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return method(*args, **kwargs)
            finally:
                in_ledger[0] += time.monotonic() - started

        return run

    ledger.reserve = timed(ledger.reserve)  # type: ignore[method-assign]
    ledger.settle = timed(ledger.settle)  # type: ignore[method-assign]
    records: list[bb.CallRecord] = []
    metered = bb.wrap(client, ledger=ledger, listeners=[records.append])
    breaker = getattr(store, "breaker", None)
    assert breaker is not None
    # (start, seconds, seconds in the ledger, outcome) per call; when the circuit first opened here.
    calls: list[tuple[float, float, float, str]] = []
    first_open: float | None = None
    while not stop.is_set():
        if len(calls) == WARM_CALLS:
            ready.put("warm")
        in_ledger[0] = 0.0
        started = time.monotonic()
        try:
            metered.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 32})
            outcome = "ok"
        except bb.StoreUnavailableError:
            outcome = "denied"
        calls.append((started, time.monotonic() - started, in_ledger[0], outcome))
        if first_open is not None:
            progress[OPENED] += 1
            if outcome == "ok" and breaker.transitions["closed"]:
                progress[CLOSED_OK] += 1
        elif breaker.transitions["open"]:
            first_open = time.monotonic()
            progress[OPENED] = 0
        time.sleep(PACE_SECONDS)
    remaining = ledger.flush()
    spent = sum(r.cost.total_nanos for r in records if r.cost is not None)
    report = {
        "calls": calls,
        "first_open": first_open,
        "records_ok": sum(r.outcome == "ok" for r in records),
        "spent_nanos": spent,
        "unsettled": remaining,
        "dropped": ledger.journal_dropped,
        "transitions": dict(breaker.transitions),
    }
    ledger.close()
    store.close()
    ready.put(report)
