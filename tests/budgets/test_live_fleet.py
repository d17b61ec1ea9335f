"""The live-budgets proof: four processes follow the budgets published in a real Redis (and Cluster)
under steady load; from the CLI, one user gets an override and everyone's limit is lowered below what one
user already spent. Within 2 s no process admits a call past the lowered limit, while the overridden user
goes on; a third user's override, published before the load, stops its spend at that limit exactly across
the four processes; store spend equals the call records to the nano-dollar."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backends import Backend
from bedrock_budget.budgets import published
from bedrock_budget.budgets.compiled import current_ref
from bedrock_budget.budgets.model import Budget
from bedrock_budget.stores import Store
from bedrock_budget.testing import FakeBedrock
from polling import wait_until

from . import _fleet_worker

pytestmark = [pytest.mark.backends("redis", "cluster"), pytest.mark.slow]

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
WORKERS = 4
PROPAGATION_SECONDS = 2.0
U5_LIMIT = "0.002"
NANOS = 10**9


def _cli(*args: str) -> float:
    """Run the installed CLI as an operator would; the moment it returned (``time.monotonic``)."""
    command = [str(Path(sys.executable).with_name("bedrock-budget")), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return time.monotonic()


def _spent(store: Any, budget: Budget, user: str) -> int:
    (state,) = store.read([current_ref(budget, {"user": user}, time.time())], now_ms=int(time.time() * 1000))
    return int(state.spent_usd)


def test_a_limit_lowered_and_an_override_added_from_the_cli_reach_every_process(
    backend: Backend, fake: FakeBedrock
) -> None:
    assert backend.uri is not None
    uri = f"{backend.uri}{'&' if '?' in backend.uri else '?'}prefix={backend.prefix}"
    fleet_follows_the_cli(fake, backend.make(), uri)


def fleet_follows_the_cli(fake: FakeBedrock, store: Store, uri: str, driver: str = "sync") -> None:
    """The proof, with ``WORKERS`` processes of ``driver`` clients (``"sync"``: boto3; ``"async"``:
    aiobotocore) following the budgets published in ``store``, which ``uri`` names."""
    # u-5's own limit is a few calls' worth: the four processes race for it from the start.
    small = {"u-5": {"limit_usd": U5_LIMIT}}
    start = Budget("per-user", scope={"user": "*"}, window="lifetime", limit_usd="10", overrides=small)
    published.publish(store, [start])
    store_args = ["--store", uri]

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    queues = [context.Queue() for _ in range(WORKERS)]
    # Per worker: calls made, and when its latest call started (time.monotonic, the same clock here).
    progress = [context.Array("d", 2) for _ in range(WORKERS)]
    workers = [
        context.Process(
            target=_fleet_worker.call_until_stopped,
            args=(fake.endpoint_url, uri, HAIKU, stop, queue, driver, made),
        )
        for queue, made in zip(queues, progress, strict=True)
    ]
    for worker in workers:
        worker.start()
    try:
        for queue in queues:
            assert queue.get(timeout=120) == "warm"
        began = time.monotonic()
        # Steady load under the first limits: every process has called for each user many times.
        calls_made = [made[0] for made in progress]
        wait_until(
            lambda: all(made[0] >= before + 30 for made, before in zip(progress, calls_made, strict=True)),
            60,
            message="every process to make 30 calls under the first limits",
        )
        u17_before = _spent(store, start, "u-17")
        rate = u17_before / (time.monotonic() - began)
        assert u17_before > 0
        # Far more than u-17 can spend in this test: it must go on being admitted after the lowering.
        override = Decimal(u17_before + int(rate * 60.0)) / NANOS
        override = override.quantize(Decimal("0.000000001"))
        override_done = _cli(
            "budgets", "set", "per-user", "--value", "u-17", "--limit-usd", str(override), *store_args
        )
        lowered_to = (Decimal(_spent(store, start, "u-1")) / 2 / NANOS).quantize(Decimal("0.000000001"))
        lowered_done = _cli("budgets", "set", "per-user", "--limit-usd", str(lowered_to), *store_args)
        # Every process goes on calling past the 2 s it has to follow the change: a few calls for each user
        # started after the deadline.
        deadline = lowered_done + PROPAGATION_SECONDS
        wait_until(
            lambda: all(made[1] > deadline for made in progress),
            PROPAGATION_SECONDS + 60,
            message="every process to start a call after the deadline",
        )
        calls_made = [made[0] for made in progress]
        wait_until(
            lambda: all(made[0] >= before + 9 for made, before in zip(progress, calls_made, strict=True)),
            60,
            message="every process to call for each user three more times",
        )
        stop.set()
        reports = [queue.get(timeout=60) for queue in queues]
        for worker in workers:
            worker.join(30)
            assert worker.exitcode == 0
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join(10)

    current = published.read(store)
    assert current is not None
    assert current.version == 3
    assert all(report["version"] == 3 for report in reports)  # every process ended on the last version
    calls = [call for report in reports for call in report["calls"]]
    # Within 2 s of the lowering, no process admitted a call for u-1 (whose spend is above the new limit).
    late_u1 = [
        c for c in calls if c[2] == "u-1" and c[3] == "ok" and c[0] > lowered_done + PROPAGATION_SECONDS
    ]
    assert late_u1 == []
    assert any(c[2] == "u-1" and c[3] == "refused" for c in calls)
    last_u1 = max(c[0] for c in calls if c[2] == "u-1" and c[3] == "ok")
    print(f"\nlast u-1 call admitted {last_u1 - lowered_done:+.3f} s after the lowering was published")
    # u-17 kept its own, higher limit: admitted after the lowering, and never refused.
    assert any(c[2] == "u-17" and c[3] == "ok" and c[0] > lowered_done + PROPAGATION_SECONDS for c in calls)
    assert not any(c[2] == "u-17" and c[3] == "refused" for c in calls)
    # u-5's override held across four processes: refused at its limit, never a nano-dollar past it.
    assert any(c[2] == "u-5" and c[3] == "refused" for c in calls)
    assert 0 < _spent(store, start, "u-5") <= int(Decimal(U5_LIMIT) * NANOS)
    # Store spend = what the call records say, to the nano-dollar, for both users.
    for user in ("u-1", "u-17", "u-5"):
        assert _spent(store, start, user) == sum(report["spent"][user] for report in reports)
    u5 = _spent(store, start, "u-5")
    print(f"u-5 spent {u5} of its {U5_LIMIT} USD override; u-17's was set {override_done - began:.1f} s in")
