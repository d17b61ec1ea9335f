"""Runs in a separate process: calls against a shared request limit, some of them failing before inference,
through the sync ledger or (``driver="async"``) the async ledger, several calls at a time on one loop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from bedrock_budget.budgets import AsyncLedger, Budget, Ledger
from bedrock_budget.errors import BudgetExceededError
from bedrock_budget.stores import from_uri

#: Calls in flight at once in an async process.
ASYNC_CONCURRENCY = 4


def calls(
    uri: str,
    prefix: str,
    budget: Mapping[str, Any],
    attempts: int,
    release_every: int,
    options: Mapping[str, Any],
    start: Any,
    results: Any,
    driver: str = "sync",
) -> None:
    """``attempts`` reservations; with ``release_every=n`` every n-th attempt that is admitted is released
    (Bedrock failed before inference), the others settled. Reports (settled, released, refused)."""
    if driver == "async":
        results.put(asyncio.run(_async_calls(uri, prefix, budget, attempts, release_every, options, start)))
        return
    store = from_uri(uri, prefix=prefix)
    ledger = Ledger(store, [Budget(**budget)], **options)
    settled = released = refused = 0
    try:
        start.wait(30)
        for attempt in range(attempts):
            try:
                reservation = ledger.reserve({"user": "anyone"}, "model", None, 1000, {"output": 1})
            except BudgetExceededError:
                refused += 1
                continue
            if _released(attempt, release_every):
                ledger.release(reservation)
                released += 1
            else:
                ledger.settle(reservation, 900, {"output": 1})
                settled += 1
    finally:
        ledger.close()
        store.close()
    results.put((settled, released, refused))


def _released(attempt: int, release_every: int) -> bool:
    return bool(release_every) and attempt % release_every == release_every - 1


async def _async_calls(
    uri: str,
    prefix: str,
    budget: Mapping[str, Any],
    attempts: int,
    release_every: int,
    options: Mapping[str, Any],
    start: Any,
) -> tuple[int, int, int]:
    ledger = AsyncLedger(uri, [Budget(**budget)], store_options={"prefix": prefix}, **options)
    settled = released = refused = 0
    left = iter(range(attempts))

    async def caller() -> None:
        nonlocal settled, released, refused
        for attempt in left:
            try:
                reservation = await ledger.reserve({"user": "anyone"}, "model", None, 1000, {"output": 1})
            except BudgetExceededError:
                refused += 1
                continue
            if _released(attempt, release_every):
                ledger.release(reservation)
                released += 1
            else:
                ledger.settle(reservation, 900, {"output": 1})
                settled += 1

    try:
        await asyncio.to_thread(start.wait, 30)
        await asyncio.gather(*(caller() for _ in range(ASYNC_CONCURRENCY)))
    finally:
        await ledger.aclose()
    return settled, released, refused
