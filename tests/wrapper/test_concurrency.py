"""Eight processes share one dollar budget through wrapped clients: spend never passes the limit, and the
fake Bedrock sees exactly the calls that were granted. With capacity leases as well, and when a process
holding a lease is killed."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest

import bedrock_budget as bb
from backends import delete_prefix
from bedrock_budget.budgets import Ledger
from bedrock_budget.budgets.outcomes import BudgetStatus
from bedrock_budget.pricing import default_price_table
from bedrock_budget.stores import from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec
from polling import wait_until
from service_fixtures import kill_9, spawned_worker

from . import _budget_worker

PROCESSES = 8
CALLS_EACH = 25
NANOS_PER_USD = 10**9
#: A tenth of the limit per lease, given back after 50 ms at most: leases close both when short and when
#: their time is over while the workers run.
# Leases end their grant after a quarter of a second: long enough that a call on a busy machine still
# finds its lease live, short enough that the test sees many leases come and go.
LEASE: Mapping[str, float] = {"lease_fraction": 0.1, "lease_seconds": 0.25}
LEASING = pytest.mark.parametrize("lease", [None, LEASE], ids=["exact", "leased"])


def read_shared(store_uri: str, prefix: str, limit: str) -> BudgetStatus:
    store = from_uri(store_uri, prefix=prefix)
    try:
        ledger = Ledger(store, [bb.Budget(name="shared", window="lifetime", limit_usd=limit)])
        state = ledger.read("shared")
        ledger.close()
    finally:
        store.close()
    return state


def call_in_processes(
    fake: FakeBedrock,
    store_uri: str,
    prefix: str,
    limit: str,
    processes: int,
    calls: int,
    lease: Mapping[str, float] | None,
    *,
    timeout: float,
    messages: list[dict[str, Any]] | None = None,
    max_tokens: int = 100,
) -> list[tuple[int, int, int, int, int]]:
    """Each process calls through a wrapped client until refused: (granted, refused, leased, nano-USD its
    records cost, calls that cost more than their hold) per process."""
    context = multiprocessing.get_context("spawn")
    # Every worker starts calling once all have started up, so they all contend for the budget.
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_budget_worker.call_until_refused,
            args=(
                fake.endpoint_url,
                store_uri,
                prefix,
                limit,
                calls,
                start,
                results,
                lease,
                messages,
                max_tokens,
            ),
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=timeout) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
        worker.close()
    results.close()
    results.join_thread()
    return outcomes


def run_processes(
    fake: FakeBedrock, store_uri: str, limit: str, lease: Mapping[str, float] | None
) -> tuple[int, int, int, BudgetStatus]:
    # Usage proportional to the prompt, output at the requested maximum: the reservation is a true worst
    # case, as it is against real Bedrock.
    fake.set_usage("*", UsageSpec(default_output_tokens=100))
    prefix = f"bbtest-{uuid.uuid4().hex[:8]}:"
    try:
        outcomes = call_in_processes(
            fake, store_uri, prefix, limit, PROCESSES, CALLS_EACH, lease, timeout=120
        )
        state = read_shared(store_uri, prefix, limit)
    finally:
        delete_prefix(store_uri, prefix)
    granted = sum(outcome[0] for outcome in outcomes)
    refused = sum(outcome[1] for outcome in outcomes)
    leased = sum(outcome[2] for outcome in outcomes)
    return granted, refused, leased, state


def per_call_cost(fake: FakeBedrock) -> Decimal:
    reported = [request.usage for request in fake.requests]
    per_call = {
        default_price_table()
        .price(_budget_worker.MODEL, bb.Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens))
        .total_usd
        for u in reported
        if u is not None
    }
    (cost,) = per_call
    return cost


def check(
    fake: FakeBedrock,
    granted: int,
    refused: int,
    leased: int,
    state: BudgetStatus,
    limit: Decimal,
    lease: Mapping[str, float] | None,
) -> None:
    spent = state.spent_usd
    assert granted + refused == PROCESSES * CALLS_EACH
    assert granted > 0
    assert refused > 0
    assert fake.request_count == granted
    cost = per_call_cost(fake)
    assert spent == cost * granted
    assert spent <= limit
    # Every lease and reservation was settled or released before the workers exited.
    assert state.reserved_usd == 0
    assert state.active_reservations == 0
    assert state.models[_budget_worker.MODEL]["calls"] == granted
    if lease is None:
        assert leased == 0
    else:
        assert leased > 0  # calls were admitted from leases taken through wrap()
        # A process is refused only when the others' leases (a tenth of the limit each at most) and what
        # it spent leave no room for one more call.
        stranded = (PROCESSES - 1) * limit * Decimal(str(lease["lease_fraction"]))
        assert spent > limit - stranded - cost


@pytest.mark.slow
@pytest.mark.redis
@LEASING
def test_no_overshoot_on_redis(fake: FakeBedrock, redis_url: str, lease: Mapping[str, float] | None) -> None:
    limit = Decimal("0.02")
    granted, refused, leased, state = run_processes(fake, redis_url, str(limit), lease)
    check(fake, granted, refused, leased, state, limit, lease)


@pytest.mark.slow
@pytest.mark.cluster
@LEASING
def test_no_overshoot_on_cluster(
    fake: FakeBedrock, cluster_url: str, lease: Mapping[str, float] | None
) -> None:
    limit = Decimal("0.02")
    granted, refused, leased, state = run_processes(fake, cluster_url, str(limit), lease)
    check(fake, granted, refused, leased, state, limit, lease)


KILL_TTL = 1.0
KILL_LEASE: Mapping[str, float] = {"lease_fraction": 0.5, "lease_seconds": 1.0}


@pytest.mark.slow
@pytest.mark.redis
def test_killed_worker_leases_expire_without_their_spend(
    fake: FakeBedrock, redis_url: str, request: pytest.FixtureRequest
) -> None:
    check_killed_lease_holder(fake, redis_url, request, _budget_worker.lease_then_hold)


def check_killed_lease_holder(
    fake: FakeBedrock, redis_url: str, request: pytest.FixtureRequest, holder: Callable[..., None]
) -> None:
    """``holder`` (a worker like ``_budget_worker.lease_then_hold``) holds a lease open and is killed: the
    lease expires at its deadline, without the spend of its calls, and others get its capacity back."""
    limit = Decimal("0.02")
    limit_nanos = int(limit * NANOS_PER_USD)
    lease_nanos = int(limit_nanos * KILL_LEASE["lease_fraction"])
    slow = f"us.{_budget_worker.MODEL}"
    fake.set_usage("*", UsageSpec(default_output_tokens=100))
    # The first event comes at once, the rest over a minute: the stream keeps the lease open until the kill.
    fake.configure(slow, latency=60.0, stream_deltas=3)
    prefix = f"bbtest-{uuid.uuid4().hex[:8]}:"
    request.addfinalizer(lambda: delete_prefix(redis_url, prefix))
    args = (fake.endpoint_url, redis_url, prefix, str(limit), KILL_TTL, KILL_LEASE, slow, 3)
    with spawned_worker(holder, *args) as (worker, ready):
        unsettled, calls, leases_live = ready.get(timeout=60)
        assert calls == 3
        assert unsettled > 0
        assert leases_live == 1
        held = read_shared(redis_url, prefix, str(limit))
        # One lease, none of its calls' spend yet: that reaches the store only when the lease closes.
        assert held.active_reservations == 1
        assert held.reserved_usd * NANOS_PER_USD == lease_nanos
        assert held.spent_usd == 0
        assert fake.request_count == 5  # a warm-up call, three from the lease and the stream
        store = from_uri(redis_url, prefix=prefix)
        try:
            rival = Ledger(store, [bb.Budget(name="shared", window="lifetime", limit_usd=str(limit))])
            with pytest.raises(bb.BudgetExceededError):  # the lease's capacity is not free to others
                rival.reserve({}, _budget_worker.MODEL, None, limit_nanos - lease_nanos + 1, {})
            rival.close()
        finally:
            store.close()

        kill_9(worker)
        killed = time.monotonic()

        # Taken with a deadline lease_seconds + reservation_ttl ahead, and renewed to reservation_ttl ahead
        # while its process lived: the lease expires within lease_seconds + reservation_ttl of the kill.
        deadline = KILL_LEASE["lease_seconds"] + KILL_TTL

        def lease_expired() -> BudgetStatus | None:
            state = read_shared(redis_url, prefix, str(limit))
            assert state.spent_usd == 0
            return None if state.reserved_usd else state

        state = wait_until(
            lease_expired, deadline + 1, interval=0.05, message="the lease to expire after the kill"
        )
        assert time.monotonic() - killed < deadline + 1, "the lease outlived its store deadline"
        assert state.active_reservations == 0
        assert state.spent_usd == 0  # expiry gives the lease back, never the killed process's spend

        # Other processes spend the whole freed capacity, and no more.
        before = fake.request_count
        outcomes = call_in_processes(fake, redis_url, prefix, str(limit), 2, 40, LEASE, timeout=60)
        granted = sum(outcome[0] for outcome in outcomes)
        cost, rest = divmod(unsettled, calls)
        assert rest == 0
        after = read_shared(redis_url, prefix, str(limit))
        assert fake.request_count - before == granted
        assert after.spent_usd * NANOS_PER_USD == granted * cost <= limit_nanos
        assert after.reserved_usd == 0
        # More than was free while the lease was held: at most one of the survivors' leases is stranded.
        assert granted * cost > limit_nanos - int(limit_nanos * LEASE["lease_fraction"]) - cost
        assert granted * cost > limit_nanos - lease_nanos
