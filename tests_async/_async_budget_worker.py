"""Runs in a separate process: a wrapped aiobotocore client calling the shared fake Bedrock under one budget,
many calls at once on one event loop (the async twin of tests/wrapper/_budget_worker.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiobotocore.session import get_session

import bedrock_budget as bb
from bedrock_budget.budgets import AsyncLedger, Ledger
from bedrock_budget.stores import from_uri

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


#: How long the first settlement batch of ``settle_into_the_journal(mode="in-flight")`` waits before it goes
#: out: the test stops the store meanwhile, so the batch is sent to a store that does not answer.
IN_FLIGHT_LINGER = 3.0


def journal_budgets() -> list[bb.Budget]:
    """The budgets of the journal-crash workers (those of tests/faults/_crash_worker.py)."""
    return [
        bb.Budget("cap", window="lifetime", limit_usd="10"),
        bb.Budget("per-user", scope={"user": "*"}, limit_usd="5"),
    ]


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
    """The async twin of tests/faults/_crash_worker.py's: makes ``calls`` calls whose settlements are in the
    journal file and not in the store when the test kills this process. ``mode``: ``"background"`` (queued
    for a batch that waits a minute), ``"in-flight"`` (the first batch goes out after
    :data:`IN_FLIGHT_LINGER` seconds, to a store the test has stopped by then, and waits for its answer),
    ``"outage"`` (the store is down: journalled for replay). Puts the nano-USD each call's record cost, in
    call order (the order of the settlements in the queue), then waits to be killed."""
    asyncio.run(
        _settle_into_the_journal(endpoint, store_uri, prefix, journal_path, mode, model, calls, ready)
    )


async def _settle_into_the_journal(
    endpoint: str,
    store_uri: str,
    prefix: str,
    journal_path: str,
    mode: str,
    model: str,
    calls: int,
    ready: Any,
) -> None:
    store_options: dict[str, Any] = {"prefix": prefix}
    options: dict[str, Any]
    if mode == "background":
        options = {"settle_linger": 60.0, "settle_batch": 100_000}
    elif mode == "in-flight":
        options = {"settle_linger": IN_FLIGHT_LINGER}
        store_options["socket_timeout"] = 120.0  # the batch waits for the stopped store until the kill
    else:
        options = {"on_store_error": "allow"}
        store_options.update(socket_timeout=0.2, connect_timeout=0.2)
    ledger = AsyncLedger(
        store_uri, journal_budgets(), journal_path=journal_path, store_options=store_options, **options
    )
    records: list[bb.CallRecord] = []
    async with get_session().create_client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ) as raw:
        client = bb.wrap(raw, ledger=ledger, listeners=[records.append], attribution={"user": "u1"})
        for _ in range(calls):
            await client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 100})
        if mode == "outage":
            while ledger.journal_depth < calls:  # the batch failed: its settlements are in the outage journal
                await asyncio.sleep(0.01)
        ready.put([r.cost.total_nanos for r in records if r.cost is not None])
        await asyncio.sleep(120)  # on the loop, the batch in flight: the test kills this process long before


def replay_journal(kind: str, store_uri: str, prefix: str, journal_path: str, start: Any, ready: Any) -> None:
    """Open the journal directory with a sync ``Ledger`` or an ``AsyncLedger`` (``kind``) once ``start`` is
    passed, flush and close; put (kind, settlements the store has not taken, settlements replayed)."""
    start.wait(60)
    if kind == "sync":
        store = from_uri(store_uri, prefix=prefix)
        ledger = Ledger(store, journal_budgets(), journal_path=journal_path)
        left = ledger.flush()
        ledger.close()
        store.close()
        ready.put((kind, left, ledger.journal_replayed))
        return

    async def replay() -> tuple[int, int]:
        ledger = AsyncLedger(
            store_uri, journal_budgets(), journal_path=journal_path, store_options={"prefix": prefix}
        )
        left = await ledger.flush()
        await ledger.aclose()
        return left, ledger.journal_replayed

    ready.put((kind, *asyncio.run(replay())))
