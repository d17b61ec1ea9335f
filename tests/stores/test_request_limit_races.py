"""Request limits under contention: threads and processes racing on one request limit admit exactly the
limit, on every backend, with exact reservations and with capacity leases; released calls give their
request back and the store's count equals the calls made. (``race_processes`` also races async ledgers:
tests_async/test_request_limits.py.)"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest

from backends import Backend
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.errors import BudgetExceededError
from bedrock_budget.stores import Store, from_uri

from . import _request_worker

LIMIT = 50
CALL = {"user": "u-1"}
#: A request limit beside a dollar limit that never binds: requests are what refuses.
BUDGET: dict[str, Any] = {
    "name": "rpd",
    "window": "day",
    "limit_requests": LIMIT,
    "limit_usd": "1000",
}


def made(store: Store) -> tuple[int, int, int]:
    """Requests made and held in the store, and the calls the budget's tallies saw settle."""
    ledger = Ledger(store, [Budget(**BUDGET)])
    (status,) = ledger.status()
    calls = status.models["model"]["calls"] if "model" in status.models else 0
    ledger.close()
    return status.spent_requests, status.reserved_requests, calls


@pytest.mark.backends("all")
def test_threads_admit_exactly_the_request_limit(backend: Backend) -> None:
    ledger = Ledger(backend.make(), [Budget(**BUDGET)])
    admitted: list[int] = []
    units: set[str] = set()
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        mine = 0
        for _ in range(15):
            try:
                reservation = ledger.reserve(CALL, "model", None, 1000, {"output": 1})
            except BudgetExceededError as refused:
                units.add(refused.unit)
                continue
            mine += 1
            ledger.settle(reservation, 900, {"output": 1})
        admitted.append(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ledger.close()
    assert sum(admitted) == LIMIT
    assert units == {"requests"}
    assert made(backend.make()) == (LIMIT, 0, LIMIT)


#: (ledger options, every n-th admitted attempt released): exact reservations, with releases, and leases.
MODES: dict[str, tuple[dict[str, Any], int]] = {
    "exact": ({}, 0),
    "exact-releasing": ({}, 3),
    "leased": ({"lease_fraction": 0.1, "lease_seconds": 0.02}, 0),
    "leased-background": ({"lease_fraction": 0.1, "lease_seconds": 0.02, "settle_mode": "background"}, 0),
}


@pytest.mark.backends("redis", "cluster")
@pytest.mark.parametrize("mode", list(MODES))
def test_processes_admit_exactly_the_request_limit(backend: Backend, mode: str) -> None:
    assert backend.uri is not None
    race_processes(backend.uri, backend.prefix, mode)


def race_processes(uri: str, prefix: str, mode: str, driver: str = "sync", processes: int = 8) -> None:
    """``processes`` processes (sync or async ledgers, ``driver``) make 320 attempts in all on the limit of
    50."""
    options, release_every = MODES[mode]
    attempts = 320 // processes
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_request_worker.calls,
            args=(uri, prefix, BUDGET, attempts, release_every, options, start, results, driver),
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        outcomes = [results.get(timeout=90) for _ in workers]
        for worker in workers:
            worker.join(30)
            assert worker.exitcode == 0
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join(10)
            worker.close()
        results.close()
        results.join_thread()
    settled = sum(s for s, _, _ in outcomes)
    released = sum(r for _, r, _ in outcomes)
    assert settled + released + sum(r for _, _, r in outcomes) == processes * attempts
    in_flight = 1 if driver == "sync" else _request_worker.ASYNC_CONCURRENCY
    if mode == "exact":
        assert settled == LIMIT
    elif mode == "exact-releasing":
        # A released request comes back; only the releases a process makes after everyone else gave up (one
        # per call it has in flight) can leave requests unused.
        assert released > 0
        assert LIMIT - processes * in_flight <= settled <= LIMIT
    else:
        # Requests leased by the other processes may be stranded when one is refused, never more.
        stranded = processes * int(LIMIT * float(options["lease_fraction"]))
        assert LIMIT - stranded <= settled <= LIMIT
    store = from_uri(uri, prefix=prefix)
    try:
        assert made(store) == (settled, 0, settled)
    finally:
        store.close()
