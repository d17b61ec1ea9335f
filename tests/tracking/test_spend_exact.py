"""Exactness of the spend ledger through wrapped boto3 clients with no budgets: several processes (threads
on the memory store) make mixed calls; per bucket, the sum over users = the sum over apps = the sum over
models = the total = what the call records cost, to the nano-dollar."""

from __future__ import annotations

import multiprocessing
import threading
import time
from queue import Queue
from typing import Any

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock

from . import _spend_worker
from .conftest import Target

WORKERS = 4
CALLS_EACH = 24


def run_workers(fake: FakeBedrock, target: Target, options: dict[str, Any]) -> tuple[int, int]:
    if target.kind == "memory":
        results: Any = Queue()
        threads = [
            threading.Thread(
                target=_spend_worker.mixed_calls,
                args=(fake.endpoint_url, target.store, target.prefix, seed, CALLS_EACH, options, results),
            )
            for seed in range(WORKERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        outcomes = [results.get(timeout=5) for _ in threads]
    else:
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        workers = [
            context.Process(
                target=_spend_worker.mixed_calls,
                args=(fake.endpoint_url, target.uri, target.prefix, seed, CALLS_EACH, options, results),
            )
            for seed in range(WORKERS)
        ]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=180) for _ in workers]
        for worker in workers:
            worker.join(30)
            assert worker.exitcode == 0
    return sum(o[0] for o in outcomes), sum(o[1] for o in outcomes)


def check_sums(store: bb.stores.Store, calls: int, nanos: int, since: float) -> None:
    until = time.time() + 1
    for granularity in ("hour", "day"):
        per = {
            by: bb.spend(store, by=by, since=since, until=until, granularity=granularity, per_bucket=True)
            for by in ("user", "app", "model", ())
        }
        buckets = {row.bucket for rows in per.values() for row in rows}
        assert buckets
        for bucket in buckets:
            sums = {by: sum(r.cost_nanos for r in rows if r.bucket == bucket) for by, rows in per.items()}
            counts = {by: sum(r.calls for r in rows if r.bucket == bucket) for by, rows in per.items()}
            assert len(set(sums.values())) == 1, (granularity, bucket, sums)
            assert len(set(counts.values())) == 1, (granularity, bucket, counts)
        total = sum(r.cost_nanos for r in per[()])
        assert total == nanos
        assert sum(r.calls for r in per[()]) == calls
        users = {r.values[0] for r in per["user"]}
        assert users == {"u-1", "u-2", "u-3", "u-4", "u-5", "(none)"}
        assert {r.values[0] for r in per["app"]} == {"chat", "search", "legal"}
        assert {r.values[0] for r in per["model"]} == {
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "amazon.nova-micro-v1:0",
            "guardrail",
        }


def test_exact_over_processes(fake: FakeBedrock, target: Target) -> None:
    since = time.time()
    calls, nanos = run_workers(fake, target, {})
    assert calls == WORKERS * CALLS_EACH
    assert nanos > 0
    check_sums(target.store, calls, nanos, since)


def test_exact_in_background_mode_with_pairs(fake: FakeBedrock, target: Target) -> None:
    since = time.time()
    options = {"settle_mode": "background", "track": ["user", "app", "model", ("app", "model")]}
    calls, nanos = run_workers(fake, target, options)
    check_sums(target.store, calls, nanos, since)
    pairs = bb.spend(target.store, by=("app", "model"), since=since, until=time.time() + 1)
    assert sum(r.cost_nanos for r in pairs) == nanos
    assert all(len(r.values) == 2 for r in pairs)


def test_exact_with_capacity_leases(fake: FakeBedrock, target: Target) -> None:
    # Leased calls are tracked through their lease's summed entries: the same sums, to the nano-dollar.
    since = time.time()
    budget = bb.Budget(name="org", window="day", limit_usd="1000")
    options = {"budgets": [budget], "lease_fraction": 0.2, "settle_mode": "background"}
    calls, nanos = run_workers(fake, target, options)
    assert calls == WORKERS * CALLS_EACH
    check_sums(target.store, calls, nanos, since)
    reader = bb.budgets.Ledger(target.store, [budget], track=False)
    (status,) = reader.status()
    reader.close()
    assert status.spent_usd * 10**9 == nanos


def test_top_is_the_head_of_the_full_ranking(fake: FakeBedrock, target: Target) -> None:
    run_workers(fake, target, {})
    everyone = bb.spend(target.store, by="user")
    top = bb.spend(target.store, by="user", top=3)
    assert [(r.values, r.cost_nanos) for r in top] == [(r.values, r.cost_nanos) for r in everyone[:3]]
    assert everyone == sorted(everyone, key=lambda r: (-r.cost_nanos, r.values))
