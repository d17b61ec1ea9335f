"""Sync and async processes on one budget: four processes calling through boto3 clients (the main suite's
worker) and four through aiobotocore clients, eight calls at a time each, all on one Redis (or Cluster)
budget. Spend never passes the limit, the store's spend is exactly what the records cost, and nothing is
left held: with exact reservations, and with capacity leases taken by both kinds of process."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import _async_budget_worker
import pytest

from backends import delete_prefix
from bedrock_budget.testing import FakeBedrock, UsageSpec
from wrapper import _budget_worker
from wrapper.test_concurrency import LEASE, read_shared

SYNC_PROCESSES = 4
ASYNC_PROCESSES = 4
CALLS_EACH = 40
LIMIT = Decimal("0.03")
LEASING = pytest.mark.parametrize("lease", [None, LEASE], ids=["exact", "leased"])


def race(fake: FakeBedrock, store_uri: str, lease: Mapping[str, float] | None) -> None:
    fake.set_usage("*", UsageSpec(default_output_tokens=100))
    prefix = f"t-async2-{uuid.uuid4().hex[:8]}:"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(SYNC_PROCESSES + ASYNC_PROCESSES)
    results = context.Queue()
    common = (fake.endpoint_url, store_uri, prefix, str(LIMIT), CALLS_EACH, start, results, lease)
    workers: list[Any] = [
        context.Process(target=_budget_worker.call_until_refused, args=common) for _ in range(SYNC_PROCESSES)
    ]
    workers += [
        context.Process(target=_async_budget_worker.call_until_refused, args=common)
        for _ in range(ASYNC_PROCESSES)
    ]
    try:
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=180) for _ in workers]
        for worker in workers:
            worker.join(30)
            assert worker.exitcode == 0
        state = read_shared(store_uri, prefix, str(LIMIT))
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
        delete_prefix(store_uri, prefix)
    granted = sum(o[0] for o in outcomes)
    refused = sum(o[1] for o in outcomes)
    recorded_nanos = sum(o[3] for o in outcomes)
    assert granted + refused == (SYNC_PROCESSES + ASYNC_PROCESSES) * CALLS_EACH
    assert refused > 0
    # Both kinds of process got calls through before the budget ran out.
    assert sum(o[0] for o in outcomes if len(o) == 6) > 0
    assert sum(o[0] for o in outcomes if len(o) == 5) > 0
    if lease is None:
        assert sum(o[2] for o in outcomes) == 0
    else:
        # Both kinds of process took leases (sync workers count calls admitted while one was live, async
        # workers the leases taken).
        assert sum(o[2] for o in outcomes if len(o) == 6) > 0
        assert sum(o[2] for o in outcomes if len(o) == 5) > 0
    assert fake.request_count == granted
    assert state.spent_usd <= LIMIT  # 0 overshoot
    assert state.spent_usd * 10**9 == recorded_nanos  # store spend = records, exactly
    assert state.reserved_usd == 0
    assert state.active_reservations == 0
    assert state.models[_budget_worker.MODEL]["calls"] == granted


@pytest.mark.redis
@LEASING
def test_sync_and_async_processes_share_one_budget_on_redis(
    fake: FakeBedrock, redis_url: str, lease: Mapping[str, float] | None
) -> None:
    race(fake, redis_url, lease)


@pytest.mark.cluster
@LEASING
def test_sync_and_async_processes_share_one_budget_on_the_cluster(
    fake: FakeBedrock, cluster_url: str, lease: Mapping[str, float] | None
) -> None:
    race(fake, cluster_url, lease)
