"""What request limits cost on the reserve path: the hot path's two budgets without and with
``limit_requests`` (set so high it never refuses), reserve and settle timed separately, memory store and
Redis.

The two ledgers alternate call by call, and which goes first alternates too, so whatever the machine does
between calls (a shared VM's neighbours, a settle thread, cache misses after an idle gap) falls on both
alike; the figures are medians. The target is the issue's: within 10 % of the same budgets without
request limits.

Run alone: ``.venv/bin/python bench/request_limits.py`` (needs Redis on 127.0.0.1:6379: ``make services``).
"""

from __future__ import annotations

import time
from typing import Any

from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.stores import Store, from_uri
from bedrock_budget.stores.memory import MemoryStore
from hot_path import ATTRIBUTION, BASE_MODEL, COST, TOKENS, budgets
from report import Row, median, render
from services import REDIS_URL, delete_prefix, redis_available, unique_prefix

TARGET = 1.10
CALLS = 2000
WARM_UP = 100


def request_budgets() -> list[Budget]:
    return [budget.replace(limit_requests=10**9) for budget in budgets()]


def _timed(ledger: Ledger) -> tuple[float, float]:
    started = time.perf_counter()
    reservation = ledger.reserve(ATTRIBUTION, BASE_MODEL, "anthropic", COST, TOKENS)
    reserved = time.perf_counter()
    ledger.settle(reservation, COST // 2, TOKENS)
    return (reserved - started) * 1e6, (time.perf_counter() - reserved) * 1e6


def paired(make_store: Any) -> dict[str, tuple[float, float]]:
    """Median reserve and settle times (µs) of the plain and the request-limited ledger."""
    ledgers = {"plain": Ledger(make_store(), budgets()), "requests": Ledger(make_store(), request_budgets())}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in ledgers}
    try:
        for index in range(CALLS + WARM_UP):
            order = ("plain", "requests") if index % 2 else ("requests", "plain")
            for name in order:
                timing = _timed(ledgers[name])
                if index >= WARM_UP:
                    samples[name].append(timing)
    finally:
        for ledger in ledgers.values():
            ledger.close()
    return {
        name: (median([r for r, _ in values]), median([s for _, s in values]))
        for name, values in samples.items()
    }


def run() -> list[Row]:
    if not redis_available():
        raise RuntimeError("no Redis on 127.0.0.1:6379 (run `make services`)")
    prefixes: list[str] = []
    stores: list[Store] = []

    def redis_store() -> Store:
        prefix = unique_prefix()
        prefixes.append(prefix)
        store = from_uri(REDIS_URL, prefix=prefix)
        stores.append(store)
        return store

    rows: list[Row] = []
    try:
        for label, make in (("memory store", MemoryStore), ("Redis", redis_store)):
            times = paired(make)
            for step, index in (("reserve", 0), ("settle", 1), ("reserve+settle", None)):
                plain, limited = (
                    (times[k][index] if index is not None else sum(times[k])) for k in ("plain", "requests")
                )
                rows.append(
                    Row(
                        f"request limits: {step}, {label}",
                        limited,
                        "us",
                        plain,
                        "same budgets, no request limit",
                        f"ratio <= {TARGET:g}",
                        limited / plain <= TARGET,
                        "two budgets, both with limit_requests; calls alternate with the plain ledger",
                    )
                )
    finally:
        for store in stores:
            store.close()
        for prefix in prefixes:
            delete_prefix(REDIS_URL, prefix)
    return rows


if __name__ == "__main__":
    print(render(run()))
