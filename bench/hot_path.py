"""Budgeted-call overhead on the hot path, as a ratio against one raw EVALSHA round trip (a trivial Lua
script through redis-py's ``Script``) to the same Redis, measured in the same loop.

Every iteration times each variant once, back to back, so drift on a shared machine hits all of them
alike; the figures are medians of the per-call times. In ``settle_mode="background"`` what is timed is
what the caller waits for (the reserve round trip and a queue append); the next timed call starts once
the settle thread has applied its batch, as it does while real callers wait on Bedrock, so that work is not
charged to the next timed call (the throughput benchmark counts its CPU instead). The background ledgers
here send at once (``settle_linger=0``) to keep that gap short: lingering changes when the batch goes,
not what the caller waits for. Iterations are otherwise back to back: on a shared VM any idle gap lets
neighbours evict the caches, which inflates CPU-bound code far more than a round trip.

Budgets: an organisation-wide daily budget and a per-user monthly budget (``scope={"user": "*"}``), so
every call touches two counters, in one store round trip.

Leased rows (``lease_fraction=0.01``): most calls are admitted from the process's leases without a round
trip and about one in a hundred takes new ones (the per-user budget's limit is set so that 1 % of it
covers about 100 calls), so those rows report the mean per-call time, which carries the refills, not the
median, which would hide them.

Run alone: ``.venv/bin/python bench/hot_path.py`` (needs Redis on 127.0.0.1:6379: ``make services``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import redis
from botocore.stub import Stubber

import bedrock_budget as bb
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.stores import Store, from_uri
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.stores.redis import RedisStore
from report import Row, median, render
from services import REDIS_URL, delete_prefix, redis_available, unique_prefix
from wrapper import MESSAGES, MODEL, RESPONSE, stub_client

TARGET_RATIO = 1.3
ATTRIBUTION = {"user": "u-1", "app": "chat"}
BASE_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
COST = 5_000_000
TOKENS = {"input": 1200, "output": 512}
LEASE_FRACTION = 0.01


def budgets() -> list[Budget]:
    return [
        Budget("org-daily", window="day", limit_usd="1000000"),
        Budget("per-user", scope={"user": "*"}, window="month", limit_usd="100000"),
    ]


def request_budgets() -> list[Budget]:
    # The same two budgets, each also capping requests (never reached here): what a request limit adds.
    return [b.replace(limit_requests=10**9) for b in budgets()]


def leased_budgets() -> list[Budget]:
    # 1 % of the per-user limit is 100 calls of COST: a refill every 100 calls, as a busy user would see.
    return [
        Budget("org-daily", window="day", limit_usd="50000"),
        Budget("per-user", scope={"user": "*"}, window="month", limit_usd="50"),
    ]


def leased(store: Store, **options: Any) -> Ledger:
    return Ledger(store, leased_budgets(), lease_fraction=LEASE_FRACTION, **options)


def interleaved(
    variants: dict[str, Callable[[], Any]],
    iterations: int,
    ledgers: list[Ledger],
    before: Callable[[str], None] = lambda name: None,
    means: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Per-call time of each variant: the median, or the mean for the variants named in ``means``."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(iterations + 20):
        for name, call in variants.items():
            before(name)
            started = time.perf_counter()
            call()
            elapsed = (time.perf_counter() - started) * 1e6
            if index >= 20:  # warm-up: connections, script loads, caches
                samples[name].append(elapsed)
            while any(ledger.pending_settlements for ledger in ledgers):
                time.sleep(0)
    return {
        name: (sum(values) / len(values) if name in means else median(values))
        for name, values in samples.items()
    }


def _reserve_settle(ledger: Ledger) -> Callable[[], None]:
    def call() -> None:
        ledger.settle(ledger.reserve(ATTRIBUTION, BASE_MODEL, "anthropic", COST, TOKENS), COST // 2, TOKENS)

    return call


def _hollow_reserve(store: RedisStore, client: redis.Redis) -> Callable[[], None]:
    """A ledger reserve whose script does no work but takes the real keys and arguments and returns a
    reply of the real shape: the ledger's Python, redis-py and the round trip without the Lua."""
    row = "0 0 0 0 0 0 0 -"
    store._scripts["reserve"] = client.register_script(f"return '1 0\\n{row}\\n{row}'")
    ledger = Ledger(store, budgets())
    return lambda: ledger.reserve(ATTRIBUTION, BASE_MODEL, "anthropic", COST, TOKENS)


def _raw_reserve_script(store: RedisStore) -> Callable[[], Any]:
    """The reserve script itself, through redis-py's ``Script`` as the store sends it, with the keys and
    arguments of a real reservation built once: the round trip and the Lua, without any of our Python."""
    captured: dict[str, tuple[list[str], list[Any]]] = {}
    send = store._eval

    def capture(script: str, keys: Any, args: Any) -> Any:
        captured[script] = (list(keys), list(args))
        return send(script, keys, args)

    store._eval = capture  # type: ignore[method-assign]
    Ledger(store, budgets()).reserve(ATTRIBUTION, BASE_MODEL, "anthropic", COST, TOKENS)
    store._eval = send  # type: ignore[method-assign]
    keys, args = captured["reserve"]
    runner = store._scripts["reserve"]
    ids = itertools.count()
    return lambda: runner(keys=keys, args=[args[0], args[1], f"raw-{next(ids)}", *args[3:]])


def _evalsha_stats(client: redis.Redis) -> tuple[int, int]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def ledger_rows(client: redis.Redis, evalsha: Callable[[], Any], prefixes: list[str]) -> list[Row]:
    stores: list[Store] = []

    def redis_store() -> Store:
        prefix = unique_prefix()
        prefixes.append(prefix)
        store = from_uri(REDIS_URL, prefix=prefix)
        stores.append(store)
        return store

    memory = Ledger(MemoryStore(), budgets())
    sync = Ledger(redis_store(), budgets())
    background = Ledger(redis_store(), budgets(), settle_mode="background", settle_linger=0)
    leased_sync = leased(redis_store())
    leased_background = leased(redis_store(), settle_mode="background", settle_linger=0)
    memory_requests = Ledger(MemoryStore(), request_budgets())
    sync_requests = Ledger(redis_store(), request_budgets())
    background_requests = Ledger(redis_store(), request_budgets(), settle_mode="background", settle_linger=0)
    hollow_store, raw_store = redis_store(), redis_store()
    assert isinstance(hollow_store, RedisStore)
    assert isinstance(raw_store, RedisStore)
    try:
        times = interleaved(
            {
                "evalsha": evalsha,
                "memory": _reserve_settle(memory),
                "sync": _reserve_settle(sync),
                "background": _reserve_settle(background),
                # The same three with request limits, in the same order, so each follows what its plain
                # twin follows (a background call's batch may still be going out during the next call).
                "memory-requests": _reserve_settle(memory_requests),
                "sync-requests": _reserve_settle(sync_requests),
                "background-requests": _reserve_settle(background_requests),
                "leased-sync": _reserve_settle(leased_sync),
                "leased-background": _reserve_settle(leased_background),
                "hollow": _hollow_reserve(hollow_store, client),
                "script": _raw_reserve_script(raw_store),
            },
            iterations=600,
            ledgers=[background, leased_background, background_requests],
            means=frozenset({"leased-sync", "leased-background"}),
        )
        background.flush()
        # Server time of the reserve script alone (EVALSHA counters before and after a burst of reserves).
        probe = Ledger(redis_store(), budgets())
        probe.reserve(ATTRIBUTION, BASE_MODEL, "anthropic", COST, TOKENS)
        calls_before, usec_before = _evalsha_stats(client)
        for _ in range(300):
            probe.reserve(ATTRIBUTION, BASE_MODEL, "anthropic", COST, TOKENS)
        calls_after, usec_after = _evalsha_stats(client)
        server_us = (usec_after - usec_before) / max(1, calls_after - calls_before)
        probe.close()
    finally:
        for ledger in (
            memory,
            sync,
            background,
            leased_sync,
            leased_background,
            memory_requests,
            sync_requests,
            background_requests,
        ):
            ledger.close()
        for store in stores:
            store.close()
    base = times["evalsha"]

    def row(name: str, key: str, note: str = "", target: bool = True) -> Row:
        value = times[key]
        return Row(
            name,
            value,
            "us",
            base,
            "raw EVALSHA",
            f"ratio <= {TARGET_RATIO:g}" if target else "",
            value / base <= TARGET_RATIO if target else None,
            note,
        )

    return [
        row("hot path: ledger reserve+settle, memory store", "memory"),
        row(
            "hot path: ledger reserve+settle, Redis, sync",
            "sync",
            "two synchronous round trips (reserve, settle); settle_mode='background' takes the settle "
            "off the path",
        ),
        row(
            "hot path: ledger reserve+settle, Redis, background",
            "background",
            "the caller waits for the reserve round trip and a queue append; the batch goes out "
            "between calls",
        ),
        row(
            "hot path: ledger reserve+settle, Redis, leases, background",
            "leased-background",
            f"lease_fraction={LEASE_FRACTION:g}: mean per call, one lease refill (a round trip) per about "
            "100 calls; the lease's settlement is queued",
        ),
        row(
            "hot path: ledger reserve+settle, Redis, leases, sync",
            "leased-sync",
            f"lease_fraction={LEASE_FRACTION:g}: mean per call; every 100 calls one refill and one lease "
            "settlement, both synchronous",
        ),
        row(
            "hot path: ledger reserve+settle, memory store, request limits",
            "memory-requests",
            "both budgets also have limit_requests: the request count is held and settled with the amounts",
        ),
        row(
            "hot path: ledger reserve+settle, Redis, sync, request limits",
            "sync-requests",
            "both budgets also have limit_requests, in the same two round trips",
        ),
        row(
            "hot path: ledger reserve+settle, Redis, background, request limits",
            "background-requests",
            "both budgets also have limit_requests, in the same reserve round trip",
        ),
        row(
            "  of which: ledger reserve with a no-op script",
            "hollow",
            "the ledger's Python, redis-py packing the real arguments (2 counters) and parsing a reply "
            "of the real shape, and the round trip; everything but the Lua",
            target=False,
        ),
        row(
            "  floor: the reserve script alone, same keys and arguments",
            "script",
            "one EVALSHA of the real reserve script with a real reservation's keys and JSON argument, built "
            "once: the round trip, redis-py and the Lua; the background row's excess over it is the "
            "ledger's and the store's Python",
            target=False,
        ),
        Row(
            "  of which: reserve script time inside Redis",
            server_us,
            "us",
            base,
            "raw EVALSHA",
            note="INFO commandstats delta over 300 reserves (2 counters each); other clients may add noise",
        ),
    ]


def wrapped_rows(evalsha: Callable[[], Any], prefixes: list[str]) -> list[Row]:
    client = stub_client()
    stores: list[Store] = []

    def redis_store() -> Store:
        prefix = unique_prefix()
        prefixes.append(prefix)
        store = from_uri(REDIS_URL, prefix=prefix)
        stores.append(store)
        return store

    ledgers = {
        "memory": Ledger(MemoryStore(), budgets()),
        "background": Ledger(redis_store(), budgets(), settle_mode="background", settle_linger=0),
        "sync": Ledger(redis_store(), budgets()),
        "leased": leased(redis_store(), settle_mode="background", settle_linger=0),
    }
    wrapped = {name: bb.wrap(client, ledger=ledger) for name, ledger in ledgers.items()}

    def converse(target: Any) -> Callable[[], Any]:
        def call() -> Any:
            with bb.attribute(user="u-1", app="chat"):
                return target.converse(modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 512})

        return call

    try:
        with Stubber(client) as stubber:
            times = interleaved(
                {
                    "evalsha": evalsha,
                    "plain": converse(client),
                    **{name: converse(target) for name, target in wrapped.items()},
                },
                iterations=500,
                ledgers=list(ledgers.values()),
                before=lambda name: None if name == "evalsha" else stubber.add_response("converse", RESPONSE),
                means=frozenset({"leased"}),
            )
    finally:
        for ledger in ledgers.values():
            ledger.close()
        for store in stores:
            store.close()
    base, plain = times["evalsha"], times["plain"]

    def row(name: str, key: str, note: str) -> Row:
        overhead = times[key] - plain
        return Row(
            name,
            overhead,
            "us",
            base,
            "raw EVALSHA",
            f"ratio <= {TARGET_RATIO:g}",
            overhead / base <= TARGET_RATIO,
            f"{note}; wrapped {times[key]:.0f} us vs plain Stubber call {plain:.0f} us",
        )

    return [
        row("hot path: wrapped call overhead, memory store", "memory", "estimate, reserve, price, settle"),
        row("hot path: wrapped call overhead, Redis, background", "background", "settle queued"),
        row("hot path: wrapped call overhead, Redis, sync", "sync", "reserve and settle both synchronous"),
        row(
            "hot path: wrapped call overhead, Redis, leases, background",
            "leased",
            f"lease_fraction={LEASE_FRACTION:g}, mean per call including lease refills",
        ),
    ]


def run() -> list[Row]:
    if not redis_available():
        raise RuntimeError("no Redis on 127.0.0.1:6379 (run `make services`)")
    client = redis.Redis.from_url(REDIS_URL)
    trivial = client.register_script("return 1")

    def evalsha() -> Any:
        return trivial(keys=[], args=[])

    prefixes: list[str] = []
    try:
        return ledger_rows(client, evalsha, prefixes) + wrapped_rows(evalsha, prefixes)
    finally:
        for prefix in prefixes:
            delete_prefix(REDIS_URL, prefix)
        client.close()


if __name__ == "__main__":
    print(render(run()))
