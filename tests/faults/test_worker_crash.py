"""A worker process killed with SIGKILL while its streams hold reservations: nothing in the process can
release them, so the store must. After the reservation TTL the whole capacity is back, and the spend the
worker settled before it died is intact. (The same proofs run on async workers, whose loop renews the holds
until the kill: tests_async/test_worker_crash.py.)"""

from __future__ import annotations

import time
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
SLOW = f"us.{HAIKU}"


def _script(fake: FakeBedrock) -> None:
    fake.set_usage("*", UsageSpec(input_tokens=150, output_tokens=40))
    # The first event comes at once, the rest over a minute: the streams stay open until the kill.
    fake.configure(SLOW, latency=60.0, stream_deltas=3)


def _wait_for_expiry(ledger: Ledger, killed: float) -> None:
    wait_until(
        lambda: ledger.read("cap").reserved_usd == 0,
        TTL + 5,
        message=lambda: f"the holds to expire (the store has {ledger.read('cap')})",
    )
    assert time.monotonic() - killed <= TTL + 1


def holds_come_back(fake: FakeBedrock, store_uri: str, prefix: str, driver: str = "sync") -> None:
    """A killed worker's holds expire after the TTL, and only its settled spend stays."""
    _script(fake)
    budget = bb.Budget("cap", window="lifetime", limit_usd=str(LIMIT))
    args = (fake.endpoint_url, store_uri, prefix, str(LIMIT), TTL, HAIKU, SLOW, 3, STREAMS, "release", driver)
    with (
        from_uri(store_uri, prefix=prefix) as store,
        Ledger(store, [budget]) as ledger,
        spawned_worker(_crash_worker.settle_then_hold, *args) as (worker, ready),
    ):
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

        _wait_for_expiry(ledger, time.monotonic())
        after = ledger.read("cap")
        assert after.active_reservations == 0
        assert after.spent_usd * NANOS_PER_USD == settled  # expiry gives holds back, never charges them
        everything = ledger.reserve({}, HAIKU, None, remaining, {})
        ledger.release(everything)
        assert ledger.read("cap").spent_usd * NANOS_PER_USD == settled


def holds_are_charged(fake: FakeBedrock, store_uri: str, prefix: str, driver: str = "sync") -> None:
    """With ``on_expired_hold="charge"`` a killed worker's holds are spent at their worst case, once."""
    _script(fake)
    budget = bb.Budget("cap", window="lifetime", limit_usd=str(LIMIT), on_expired_hold="charge")
    args = (fake.endpoint_url, store_uri, prefix, str(LIMIT), TTL, HAIKU, SLOW, 3, STREAMS, "charge", driver)
    with (
        from_uri(store_uri, prefix=prefix) as store,
        Ledger(store, [budget]) as ledger,
        spawned_worker(_crash_worker.settle_then_hold, *args) as (worker, ready),
    ):
        settled, _ = ready.get(timeout=60)
        held = ledger.read("cap")
        assert held.active_reservations == STREAMS
        worst = held.reserved_usd
        assert worst > 0
        kill_9(worker)

        _wait_for_expiry(ledger, time.monotonic())
        after = ledger.read("cap")
        assert after.active_reservations == 0
        # The streams' cost is unknown, so their worst case is recorded: spend is never undercounted.
        assert after.spent_usd == worst + Decimal(settled) / NANOS_PER_USD
        assert ledger.read("cap").spent_usd == after.spent_usd  # charged once


@pytest.mark.redis
@pytest.mark.slow
def test_killed_worker_gives_its_holds_back_after_the_ttl(
    fake: FakeBedrock, redis_url: str, prefix: str
) -> None:
    holds_come_back(fake, redis_url, prefix)


@pytest.mark.redis
@pytest.mark.slow
def test_a_killed_workers_holds_are_charged_at_their_worst_case_when_the_budget_says_so(
    fake: FakeBedrock, redis_url: str, prefix: str
) -> None:
    holds_are_charged(fake, redis_url, prefix)
