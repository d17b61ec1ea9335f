"""What the spend ledger costs: the hot path with tracking on against the same ledger with ``track=False``,
measured in the same interleaved loop (so each ratio is tracking on / tracking off), and the Redis memory
one day of tracking takes per 100,000 users.

Hot path: ledger reserve+settle with two budgets (as in ``hot_path.py``), sync and background settle;
and with no budgets at all (``wrap(store=...)`` without budgets), where tracking is the only store write
and goes out in background batches. In background mode what is timed is what the caller waits for; the
next timed call starts once the settle thread has applied its batch.

Memory: 100,000 users, one call each, tracked by user, app and model in one hour of one day, written
through ``settle_many`` in batches of 500, then measured with ``MEMORY USAGE`` on every key under the
prefix (the per-key figure, so other users of the shared Redis do not count) and the change of
``INFO memory`` ``used_memory``. The dedupe hashes (one field per call, kept for a day) are
reported apart: they grow with calls, not users.

CPU: the same ledger calls (one shared budget, as in ``throughput.py``) against a Redis and a 3-master
Cluster started here, so their ``INFO cpu`` counts nothing else: client CPU (every thread of the process,
the settle thread included) plus server CPU per call, tracking on against ``track=False`` in rounds of one
each, the ratio the median of seven rounds' ratios (one round's ratio still moves by 10-20 % here). On a
shared, loaded machine wall-clock ratios swing with the neighbours; CPU per call is what throughput on a
saturated machine comes down to, and moves far less.

Run alone: ``.venv/bin/python bench/tracking.py`` (needs Redis on 127.0.0.1:6379: ``make services``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import Store, from_uri
from bedrock_budget.stores.base import SettleRequest
from bedrock_budget.stores.tracking import Tracking
from hot_path import ATTRIBUTION, BASE_MODEL, COST, TOKENS, budgets, interleaved
from report import Row, median
from services import REDIS_URL, delete_prefix, redis_available, redis_cluster, redis_server, unique_prefix

TARGET_RATIO = 1.15
USERS = 100_000
BATCH = 500


def _calls(ledger: Ledger) -> Any:
    def call() -> None:
        ledger.settle(ledger.reserve(ATTRIBUTION, BASE_MODEL, "anthropic", COST, TOKENS), COST // 2, TOKENS)

    return call


def hot_path_rows(prefixes: list[str]) -> list[Row]:
    stores: list[Store] = []

    def store() -> Store:
        prefix = unique_prefix()
        prefixes.append(prefix)
        made = from_uri(REDIS_URL, prefix=prefix)
        stores.append(made)
        return made

    fast = {"settle_mode": "background", "settle_linger": 0}
    ledgers = {
        "sync-on": Ledger(store(), budgets()),
        "sync-off": Ledger(store(), budgets(), track=False),
        "background-on": Ledger(store(), budgets(), **fast),  # type: ignore[arg-type]
        "background-off": Ledger(store(), budgets(), track=False, **fast),  # type: ignore[arg-type]
        "nobudget-on": Ledger(store(), settle_linger=0),
        "nobudget-off": Ledger(store(), track=False),
    }
    try:
        times = interleaved(
            {name: _calls(ledger) for name, ledger in ledgers.items()},
            iterations=600,
            ledgers=list(ledgers.values()),
        )
    finally:
        for ledger in ledgers.values():
            ledger.close()
        for made in stores:
            made.close()
    rows = []
    for label, key in (
        ("Redis, sync", "sync"),
        ("Redis, background", "background"),
        ("Redis, no budgets", "nobudget"),
    ):
        on, off = times[f"{key}-on"], times[f"{key}-off"]
        # Without budgets the ledger does no store work at all with tracking off: the ratio would compare
        # against almost nothing, so that row reports what tracking adds to a call instead.
        judged = key != "nobudget"
        rows.append(
            Row(
                f"tracking: ledger reserve+settle, {label}",
                on,
                "us",
                off,
                "same, track=False",
                f"ratio <= {TARGET_RATIO:g}" if judged else "",
                on / off <= TARGET_RATIO if judged else None,
                "" if judged else f"adds {on - off:.0f} us a call: the entry is built and queued for a batch",
            )
        )
    return rows


def memory_rows(client: redis.Redis, prefixes: list[str]) -> list[Row]:
    prefix = unique_prefix()
    prefixes.append(prefix)
    store = from_uri(REDIS_URL, prefix=prefix)
    tracking = Tracking()
    at = time.time()
    before = int(client.info("memory")["used_memory"])
    try:
        for start in range(0, USERS, BATCH):
            requests = [
                SettleRequest(
                    os.urandom(16).hex(),
                    (),
                    track=tracking.entry(
                        {"user": f"user-{n:06d}", "app": f"app-{n % 20}"}, BASE_MODEL, COST, TOKENS, at
                    ),
                )
                for n in range(start, start + BATCH)
            ]
            store.settle_many(requests, now_ms=int(at * 1000))
        after = int(client.info("memory")["used_memory"])
        totals = {"dedupe": 0, "ledger": 0}
        keys = 0
        for key in client.scan_iter(match=f"{prefix}*", count=5000):
            keys += 1
            kind = "dedupe" if b"}:d:" in key else "ledger"
            totals[kind] += int(client.memory_usage(key, samples=0) or 0)
    finally:
        store.close()
    mib = 1 << 20
    return [
        Row(
            "tracking: Redis memory, 100k users x 1 day (hour + day buckets)",
            totals["ledger"] / mib,
            "MiB",
            note=f"MEMORY USAGE over {keys:,} keys (user, app, model, total); {totals['ledger'] / USERS:.0f} "
            "bytes a user",
        ),
        Row(
            "tracking: Redis memory, dedupe of 100k calls (kept 1 day)",
            totals["dedupe"] / mib,
            "MiB",
            note=f"{totals['dedupe'] / USERS:.0f} bytes a call; INFO used_memory grew "
            f"{(after - before) / mib:.1f} MiB in all",
        ),
    ]


CPU_CALLS = 3000
CPU_ROUNDS = 7
SHARED_COST = 7_000_003


def _server_cpu(clients: list[redis.Redis]) -> float:
    total = 0.0
    for client in clients:
        info = client.info("cpu")
        total += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    return total


def _cpu_per_call(uri: str, servers: list[redis.Redis], mode: str, track: bool) -> tuple[float, float]:
    from bedrock_budget.budgets import Budget

    store = from_uri(uri, prefix=unique_prefix())
    budget = [Budget("shared", window="lifetime", limit_usd="1000000")]
    ledger = Ledger(store, budget, settle_mode=mode, track=track)  # type: ignore[arg-type]

    def call() -> None:
        reservation = ledger.reserve({"user": "anyone"}, "model", None, SHARED_COST, {"output": 1})
        ledger.settle(reservation, SHARED_COST, {"output": 1})

    try:
        for _ in range(200):
            call()
        ledger.flush()
        server, client = _server_cpu(servers), time.process_time()
        for _ in range(CPU_CALLS):
            call()
        ledger.flush()
        used = (time.process_time() - client) / CPU_CALLS * 1e6
        return used, (_server_cpu(servers) - server) / CPU_CALLS * 1e6
    finally:
        ledger.close()
        store.close()


def cpu_rows() -> list[Row]:
    rows: list[Row] = []
    for label in ("Redis", "Cluster"):
        with redis_server() if label == "Redis" else redis_cluster() as uri:
            hosts = uri.split("//", 1)[1].split("/", 1)[0].split(",")
            servers = [redis.Redis(port=int(h.rsplit(":", 1)[1])) for h in hosts]
            try:
                for mode in ("sync", "background"):
                    # Rounds of (on, off) back to back; the ratio is the median of the rounds' ratios, so a
                    # neighbour's burst during one round moves one ratio, not the figure.
                    measured: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
                    for _ in range(CPU_ROUNDS):
                        for track in (True, False):
                            measured[track].append(_cpu_per_call(uri, servers, mode, track))
                    rounds = zip(measured[True], measured[False], strict=True)
                    ratios = [sum(on) / sum(off) for on, off in rounds]
                    on_client, on_server = (median([m[i] for m in measured[True]]) for i in (0, 1))
                    off_client, off_server = (median([m[i] for m in measured[False]]) for i in (0, 1))
                    ratio = median(ratios)
                    judged = mode == "background"
                    rows.append(
                        Row(
                            f"tracking: CPU per call (client + server), {label}, {mode}",
                            on_client + on_server,
                            "us",
                            off_client + off_server,
                            "same, track=False",
                            f"ratio <= {TARGET_RATIO:g}" if judged else "",
                            ratio <= TARGET_RATIO if judged else None,
                            f"client {on_client:.0f} vs {off_client:.0f} us, server {on_server:.0f} vs "
                            f"{off_server:.0f} us; one shared budget; median of {CPU_ROUNDS} paired rounds "
                            f"(ratios {min(ratios):.2f}-{max(ratios):.2f})",
                            paired_ratio=ratio,
                        )
                    )
            finally:
                for connection in servers:
                    connection.close()
    return rows


def run() -> list[Row]:
    if not redis_available():
        raise RuntimeError("Redis is not running on 127.0.0.1:6379 (make services)")
    client = redis.Redis.from_url(REDIS_URL)
    prefixes: list[str] = []
    try:
        return hot_path_rows(prefixes) + cpu_rows() + memory_rows(client, prefixes)
    finally:
        for prefix in prefixes:
            delete_prefix(REDIS_URL, prefix)
        client.close()


if __name__ == "__main__":
    from report import render

    print(render(run()))
