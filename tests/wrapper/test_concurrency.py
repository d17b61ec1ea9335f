"""Eight processes share one dollar budget through wrapped clients: spend never passes the limit, and the
fake Bedrock sees exactly the calls that were granted."""

from __future__ import annotations

import multiprocessing
import uuid
from decimal import Decimal

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.pricing import default_price_table
from bedrock_budget.stores import from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec

from . import _budget_worker

PROCESSES = 8
CALLS_EACH = 25


def run_processes(fake: FakeBedrock, store_uri: str, limit: str) -> tuple[int, int, Decimal]:
    # Usage proportional to the prompt, output at the requested maximum: the reservation is a true worst
    # case, as it is against real Bedrock.
    fake.set_usage("*", UsageSpec(default_output_tokens=100))
    prefix = f"bbtest-{uuid.uuid4().hex[:8]}:"
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(
            target=_budget_worker.call_until_refused,
            args=(fake.endpoint_url, store_uri, prefix, limit, CALLS_EACH, start, results),
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    results.close()
    results.join_thread()
    store = from_uri(store_uri, prefix=prefix)
    try:
        ledger = Ledger(store, [bb.Budget(name="shared", window="lifetime", limit_usd=limit)])
        spent = ledger.read("shared").spent_usd
        ledger.close()
    finally:
        store.close()
    granted = sum(g for g, _ in outcomes)
    refused = sum(r for _, r in outcomes)
    return granted, refused, spent


def check(fake: FakeBedrock, granted: int, refused: int, spent: Decimal, limit: Decimal) -> None:
    assert granted + refused == PROCESSES * CALLS_EACH
    assert granted > 0
    assert refused > 0
    assert fake.request_count == granted
    reported = [request.usage for request in fake.requests]
    per_call = {
        default_price_table()
        .price(_budget_worker.MODEL, bb.Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens))
        .total_usd
        for u in reported
        if u is not None
    }
    (cost,) = per_call
    assert spent == cost * granted
    assert spent <= limit


@pytest.mark.slow
@pytest.mark.redis
def test_no_overshoot_on_redis(fake: FakeBedrock, redis_url: str) -> None:
    limit = Decimal("0.02")
    granted, refused, spent = run_processes(fake, redis_url, str(limit))
    check(fake, granted, refused, spent, limit)


@pytest.mark.slow
@pytest.mark.cluster
def test_no_overshoot_on_cluster(fake: FakeBedrock, cluster_url: str) -> None:
    limit = Decimal("0.02")
    granted, refused, spent = run_processes(fake, cluster_url, str(limit))
    check(fake, granted, refused, spent, limit)
