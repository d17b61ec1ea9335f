"""A worker process killed with SIGKILL while its streams hold reservations: nothing in the process can
release them, so the store must. After the reservation TTL the whole capacity is back, and the spend the
worker settled before it died is intact."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec
from polling import wait_until
from service_fixtures import kill_9, spawned_worker

from . import _crash_worker
from .conftest import HAIKU, NANOS_PER_USD

TTL = 2.0
LIMIT = Decimal("1")
STREAMS = 3


@pytest.mark.redis
@pytest.mark.slow
def test_killed_worker_gives_its_holds_back_after_the_ttl(
    fake: FakeBedrock, redis_url: str, prefix: str, ledgers: Callable[[Ledger], Ledger]
) -> None:
    slow = f"us.{HAIKU}"
    fake.set_usage("*", UsageSpec(input_tokens=150, output_tokens=40))
    # The first event comes at once, the rest over a minute: the streams stay open until the kill.
    fake.configure(slow, latency=60.0, stream_deltas=3)
    budget = bb.Budget("cap", window="lifetime", limit_usd=str(LIMIT))
    ledger = ledgers(Ledger(from_uri(redis_url, prefix=prefix), [budget]))
    args = (fake.endpoint_url, redis_url, prefix, str(LIMIT), TTL, HAIKU, slow, 3, STREAMS)
    with spawned_worker(_crash_worker.settle_then_hold, *args, "release") as (worker, ready):
        settled, settled_calls = ready.get(timeout=60)
        held = ledger.read("cap")
        assert held.active_reservations == STREAMS
        assert held.reserved_usd > 0
        assert held.spent_usd * NANOS_PER_USD == settled
        assert settled_calls == 3
        remaining = int((LIMIT - held.spent_usd) * NANOS_PER_USD)
        with pytest.raises(bb.BudgetExceededError):
            ledger.reserve({}, HAIKU, None, remaining, {})  # the dead worker's holds still count

        kill_9(worker)

        killed = time.monotonic()
        wait_until(
            lambda: ledger.read("cap").reserved_usd == 0,
            TTL + 5,
            message=lambda: f"the holds to expire (the store has {ledger.read('cap')})",
        )
        assert time.monotonic() - killed <= TTL + 1
        after = ledger.read("cap")
        assert after.active_reservations == 0
        assert after.spent_usd * NANOS_PER_USD == settled  # expiry gives holds back, never charges them
        everything = ledger.reserve({}, HAIKU, None, remaining, {})
        ledger.release(everything)
        assert ledger.read("cap").spent_usd * NANOS_PER_USD == settled


@pytest.mark.redis
@pytest.mark.slow
def test_a_killed_workers_holds_are_charged_at_their_worst_case_when_the_budget_says_so(
    fake: FakeBedrock, redis_url: str, prefix: str, ledgers: Callable[[Ledger], Ledger]
) -> None:
    slow = f"us.{HAIKU}"
    fake.set_usage("*", UsageSpec(input_tokens=150, output_tokens=40))
    fake.configure(slow, latency=60.0, stream_deltas=3)
    budget = bb.Budget("cap", window="lifetime", limit_usd=str(LIMIT), on_expired_hold="charge")
    ledger = ledgers(Ledger(from_uri(redis_url, prefix=prefix), [budget]))
    args = (fake.endpoint_url, redis_url, prefix, str(LIMIT), TTL, HAIKU, slow, 3, STREAMS)
    with spawned_worker(_crash_worker.settle_then_hold, *args, "charge") as (worker, ready):
        settled, _ = ready.get(timeout=60)
        held = ledger.read("cap")
        assert held.active_reservations == STREAMS
        worst = held.reserved_usd
        assert worst > 0
        kill_9(worker)

        killed = time.monotonic()
        wait_until(
            lambda: ledger.read("cap").reserved_usd == 0,
            TTL + 5,
            message=lambda: f"the holds to expire (the store has {ledger.read('cap')})",
        )
        assert time.monotonic() - killed <= TTL + 1
        after = ledger.read("cap")
        assert after.active_reservations == 0
        # The streams' cost is unknown, so their worst case is recorded: spend is never undercounted.
        assert after.spent_usd == worst + Decimal(settled) / NANOS_PER_USD
        assert ledger.read("cap").spent_usd == after.spent_usd  # charged once
