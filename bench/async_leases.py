"""What capacity leases save on the async ledger's hot path: ``AsyncLedger`` with and without
``lease_fraction``, the hot path's two budgets, on the memory store and on Redis.

- *reserve, awaited*: the median time of ``await ledger.reserve(...)`` for one task calling in sequence.
  A call a live lease admits never suspends; an exact reservation is one awaited store round trip.
- *loop CPU per call*: the process's CPU time (everything here runs on the loop's thread) for reserve and
  settle, the queued settlement batches included, divided by the calls. It is the time our code keeps
  the loop from anything else.

Both for one task calling in sequence and for 50 tasks at a time. With 50 tasks, the awaited time of a
call also counts the other tasks' turns on the loop (and, after each new lease, the wait for it).

The ledgers alternate block by block (and which goes first alternates too), so whatever the machine does
meanwhile falls on both alike. Each block (100 calls for one task, 1,000 for 50) ends with
``flush()``, which also retires the leased ledger's leases: the next block takes new ones, about as often
as a busy process does with the default ``lease_seconds=1``.
Spend tracking is on (the default), so every leased call still sends its spend-ledger entry in a batch;
leases save the reservation round trip, not the settlement.

Run alone: ``.venv/bin/python bench/async_leases.py`` (needs Redis on 127.0.0.1:6379: ``make services``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bedrock_budget.budgets import AsyncLedger
from bedrock_budget.stores import Store
from bedrock_budget.stores.memory import MemoryStore
from hot_path import ATTRIBUTION, BASE_MODEL, COST, LEASE_FRACTION, TOKENS, budgets
from report import Row, median, render
from services import REDIS_URL, delete_prefix, redis_available, unique_prefix

CONCURRENT_TASKS = 50
#: (name, tasks at a time, calls per block, blocks measured)
SHAPES = (("one task", 1, 100, 20), (f"{CONCURRENT_TASKS} tasks", CONCURRENT_TASKS, 1000, 6))
MODES = ("exact", "leased")


async def _one(ledger: AsyncLedger) -> float:
    started = time.perf_counter()
    reservation = await ledger.reserve(ATTRIBUTION, BASE_MODEL, "anthropic", COST, TOKENS)
    elapsed = time.perf_counter() - started
    ledger.settle(reservation, COST // 2, TOKENS)
    return elapsed * 1e6


async def _calls(ledger: AsyncLedger, tasks: int, calls: int, awaited: list[float]) -> None:
    left = iter(range(calls))

    async def task() -> None:
        for _ in left:
            awaited.append(await _one(ledger))

    await asyncio.gather(*(task() for _ in range(tasks)))


async def _measure(make_store: Callable[[], Store | str]) -> dict[tuple[str, str], tuple[float, float]]:
    """(mode, shape) → (median awaited reserve µs, loop CPU µs per call)."""
    ledgers = {
        "exact": AsyncLedger(make_store(), budgets()),
        "leased": AsyncLedger(make_store(), budgets(), lease_fraction=LEASE_FRACTION),
    }
    results: dict[tuple[str, str], tuple[float, float]] = {}
    try:
        for shape, tasks, calls, blocks in SHAPES:
            awaited: dict[str, list[float]] = {mode: [] for mode in MODES}
            cpu: dict[str, float] = dict.fromkeys(MODES, 0.0)
            for block in range(blocks + 1):  # the first block warms up
                for mode in MODES if block % 2 else MODES[::-1]:
                    ledger = ledgers[mode]
                    samples: list[float] = []
                    started = time.process_time()
                    await _calls(ledger, tasks, calls, samples)
                    await ledger.flush()
                    if block:
                        cpu[mode] += time.process_time() - started
                        awaited[mode].extend(samples)
            for mode in MODES:
                results[mode, shape] = (median(awaited[mode]), cpu[mode] / (blocks * calls) * 1e6)
        assert ledgers["leased"].leases_taken > 0
    finally:
        for ledger in ledgers.values():
            await ledger.aclose()
    return results


def run() -> list[Row]:
    if not redis_available():
        raise RuntimeError("no Redis on 127.0.0.1:6379 (run `make services`)")
    prefixes: list[str] = []

    def redis_store() -> str:
        # A URI: the ledger makes its redis.asyncio store from it (a sync store would run in threads).
        prefix = unique_prefix()
        prefixes.append(prefix)
        return f"{REDIS_URL}?prefix={prefix}"

    rows: list[Row] = []
    try:
        stores: tuple[tuple[str, Callable[[], Store | str]], ...] = (
            ("memory store", MemoryStore),
            ("Redis", redis_store),
        )
        for label, make in stores:
            results = asyncio.run(_measure(make))
            for shape, *_ in SHAPES:
                (exact_wait, exact_cpu), (leased_wait, leased_cpu) = (results[m, shape] for m in MODES)
                rows.append(
                    Row(
                        f"async leases: reserve, awaited, {shape}, {label}",
                        leased_wait,
                        "us",
                        exact_wait,
                        "exact reservation",
                        note=f"lease_fraction={LEASE_FRACTION}; median",
                    )
                )
                rows.append(
                    Row(
                        f"async leases: loop CPU per call, {shape}, {label}",
                        leased_cpu,
                        "us",
                        exact_cpu,
                        "exact reservation",
                        note="reserve + settle, settlement batches included",
                    )
                )
    finally:
        for prefix in prefixes:
            delete_prefix(REDIS_URL, prefix)
    return rows


if __name__ == "__main__":
    print(render(run()))
