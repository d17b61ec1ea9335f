"""What following the store's published budgets costs on the reserve path: ledger reserve+settle with the
budgets of ``hot_path.py`` given in Python, against the same budgets published in the store and followed
(``follow_published``), the per-user budget carrying 10,000 per-value overrides (the caller's user among
them), in the same interleaved loop. The follower's one read a second runs on its own thread; what a call
pays is the override lookup and the held limits of its value.

Run alone: ``.venv/bin/python bench/live_budgets.py`` (needs Redis on 127.0.0.1:6379: ``make services``).
"""

from __future__ import annotations

from collections.abc import Callable

from bedrock_budget.budgets import Ledger, published
from bedrock_budget.budgets.model import Budget
from bedrock_budget.stores import Store, from_uri
from bedrock_budget.stores.memory import MemoryStore
from hot_path import ATTRIBUTION, BASE_MODEL, COST, TOKENS, budgets, interleaved
from report import Row
from services import REDIS_URL, delete_prefix, redis_available, unique_prefix

TARGET_RATIO = 1.10
OVERRIDES = 10_000


def _with_overrides() -> list[Budget]:
    overrides = {f"u-{n}": {"limit_usd": str(100_000 + n)} for n in range(OVERRIDES)}
    return [b.replace(overrides=overrides) if b.wildcard_keys else b for b in budgets()]


def _call(ledger: Ledger) -> Callable[[], None]:
    def call() -> None:
        ledger.settle(ledger.reserve(ATTRIBUTION, BASE_MODEL, "anthropic", COST, TOKENS), COST // 2, TOKENS)

    return call


def _rows(label: str, make_store: Callable[[], Store], iterations: int) -> list[Row]:
    static_store, live_store = make_store(), make_store()
    published.publish(live_store, _with_overrides())
    static = Ledger(static_store, budgets())
    live = Ledger(live_store)
    live.follow_published()
    try:
        assert live.definitions_version == 1
        times = interleaved({"static": _call(static), "live": _call(live)}, iterations, [static, live])
    finally:
        static.close()
        live.close()
        static_store.close()
        live_store.close()
    ratio = times["live"] / times["static"]
    return [
        Row(
            f"live budgets: ledger reserve+settle, {label}, {OVERRIDES:,} overrides",
            times["live"],
            "us",
            times["static"],
            "same budgets given in Python",
            f"ratio <= {TARGET_RATIO:g}",
            ratio <= TARGET_RATIO,
        )
    ]


def run() -> list[Row]:
    if not redis_available():
        raise RuntimeError("Redis is not running on 127.0.0.1:6379 (make services)")
    prefixes: list[str] = []

    def redis_store() -> Store:
        prefix = unique_prefix()
        prefixes.append(prefix)
        return from_uri(REDIS_URL, prefix=prefix)

    try:
        return _rows("memory", MemoryStore, 3000) + _rows("Redis", redis_store, 600)
    finally:
        for prefix in prefixes:
            delete_prefix(REDIS_URL, prefix)


if __name__ == "__main__":
    from report import render

    print(render(run()))
