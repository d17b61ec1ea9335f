"""Capacity leases on async clients (``lease_fraction``), on the memory store, the real Redis and the real
Cluster: a live lease admits a call without a store call or an await, tasks arriving together take one
lease, a call cancelled while its lease is requested leaves nothing held, an idle loop's leases are retired
by a loop task and renewed while their calls run, request limits admit at most the limit, and a killed
async lease holder's lease expires and gives its capacity back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

import _async_budget_worker
import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import AsyncLedger, Budget
from bedrock_budget.budgets.compiled import current_ref
from bedrock_budget.budgets.outcomes import Reservation
from bedrock_budget.errors import StoreUnavailableError
from bedrock_budget.stores.base import CounterState
from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import HAIKU, Records, converse, run, wrapped
from wrapper.test_concurrency import check_killed_lease_holder

CENT = 10_000_000
CALL = {"user": "u-1"}
TEAM = Budget("team", window="lifetime", limit_usd="1")


async def state(ledger: AsyncLedger, budget: Budget) -> CounterState:
    """The store's counter, read without flushing (``AsyncLedger.read`` would retire the leases)."""
    (found,) = await ledger.store.read([current_ref(budget, {}, time.time())], now_ms=int(time.time() * 1000))
    return found


def count_reserves(ledger: AsyncLedger) -> list[str]:
    """Every reservation the ledger's store is asked for (an instance-level spy)."""
    seen: list[str] = []
    inner = ledger.store.reserve

    async def reserve(reservation_id: str, holds: Any, **kwargs: Any) -> Any:
        seen.append(reservation_id)
        return await inner(reservation_id, holds, **kwargs)

    ledger.store.reserve = reserve  # type: ignore[method-assign]
    return seen


def finished_at_once(coroutine: Coroutine[Any, Any, Reservation]) -> Reservation:
    """Run a coroutine that must not suspend (no await reached the loop): its result, or a failure."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: Reservation = done.value
        return result
    coroutine.close()
    raise AssertionError("the coroutine suspended")


async def wait_for(check: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.02)


# -- through wrap(): one lease for tasks arriving together, admission without a store call ------------------


def test_wrap_takes_lease_options_and_tasks_arriving_together_take_one_lease(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))
    budget = Budget("daily", window="lifetime", limit_usd="5")

    async def main() -> None:
        options = {"store": store_uri, "budgets": [budget], "lease_fraction": 0.2, "lease_seconds": 60}
        async with wrapped(fake, records, **options) as client:
            ledger = client.bedrock_budget_meter.guard.ledger
            assert isinstance(ledger, AsyncLedger)
            assert ledger.lease_fraction == 0.2
            reserves = count_reserves(ledger)
            await asyncio.gather(*(converse(client) for _ in range(20)))
            assert len(reserves) == 1  # twenty tasks needed the same missing lease: one request
            assert ledger.leases_taken == 1
            assert ledger.leases_live == 1
            # A live lease admits the next call before its coroutine ever suspends: no store call, no await.
            held = finished_at_once(ledger.reserve({}, f"us.{HAIKU}", "anthropic", CENT // 100, {}))
            assert held.leases
            ledger.release(held)
            assert len(reserves) == 1
            leased = await state(ledger, budget)
            assert (leased.held_usd, leased.active, leased.spent_usd) == (10**9, 1, 0)  # the $1 lease only
            assert await ledger.flush() == 0  # retires the lease: its calls' spend lands in one piece
            assert ledger.leases_live == 0
            found = await state(ledger, budget)
            assert (found.held_usd, found.active) == (0, 0)
            assert found.spent_usd == sum(r.cost.total_nanos for r in records if r.cost is not None) > 0
            assert found.models[HAIKU]["calls"] == 20
            # The lease's settlement carried its calls' spend-ledger entries, summed: every call, once.
            memory = getattr(ledger.store, "sync", None)
            reader = memory if memory is not None else bb.stores.from_uri(store_uri)
            (total,) = bb.spend(reader, by=())
            assert (total.calls, total.cost_nanos) == (20, found.spent_usd)
            if memory is None:
                reader.close()
            await ledger.aclose()

    run(main())
    assert fake.request_count == 20
    assert [r.outcome for r in records] == ["ok"] * 20


# -- cancellation while a lease is requested ----------------------------------------------------------------


@pytest.mark.parametrize("then", ["used", "unused"])
def test_a_call_cancelled_while_its_lease_is_requested_leaves_nothing_held(store_uri: str, then: str) -> None:
    async def main() -> None:
        ledger = AsyncLedger(store_uri, [TEAM], lease_fraction=0.5, lease_seconds=60)
        reserves = count_reserves(ledger)
        counted = ledger.store.reserve
        asked = asyncio.Event()
        answer = asyncio.Event()

        async def slow(reservation_id: str, holds: Any, **kwargs: Any) -> Any:
            asked.set()
            await answer.wait()  # the store answers only after the caller has been cancelled
            return await counted(reservation_id, holds, **kwargs)

        ledger.store.reserve = slow  # type: ignore[method-assign]
        requester = asyncio.create_task(ledger.reserve(CALL, "m", None, 10 * CENT, {}))
        await asked.wait()
        waiters = [
            asyncio.create_task(ledger.reserve(CALL, "m", None, 10 * CENT, {}))
            for _ in range(3 if then == "used" else 0)
        ]
        await asyncio.sleep(0.01)  # the waiters are waiting for the request's answer
        requester.cancel()
        if waiters:
            waiters[0].cancel()  # a waiter cancelled as well
        answer.set()
        with pytest.raises(asyncio.CancelledError):
            await requester
        admitted = []
        for waiter in waiters:
            try:
                admitted.append(await waiter)
            except asyncio.CancelledError:
                assert waiter is waiters[0]
        await ledger._leases.settled()  # type: ignore[union-attr]
        assert len(reserves) == 1  # one request, answered after its caller left
        assert ledger.leases_live == 1  # installed all the same, for the calls that follow
        assert all(call.leases for call in admitted)
        if then == "used":
            assert len(admitted) == 2
            for call in admitted:
                ledger.settle(call, 7 * CENT, {})
        after = await ledger.reserve(CALL, "m", None, 10 * CENT, {})
        assert after.leases  # from the lease the cancelled call asked for
        assert len(reserves) == 1
        ledger.release(after)
        assert await ledger.flush() == 0
        found = await state(ledger, TEAM)
        assert (found.held_usd, found.active) == (0, 0)
        assert found.spent_usd == (14 * CENT if then == "used" else 0)
        await ledger.aclose()

    run(main())


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_tasks_waiting_for_a_failed_request_take_the_ordinary_path() -> None:
    async def main() -> None:
        ledger = AsyncLedger("memory://", [TEAM], lease_fraction=0.5, on_store_error="allow")
        inner = ledger.store.reserve
        calls = 0

        async def failing_once(reservation_id: str, holds: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            if calls == 1:
                raise StoreUnavailableError("test://", "connection refused")
            return await inner(reservation_id, holds, **kwargs)

        ledger.store.reserve = failing_once  # type: ignore[method-assign]
        first, second = await asyncio.gather(*(ledger.reserve(CALL, "m", None, CENT, {}) for _ in range(2)))
        assert first.offline  # the requester follows the outage policy
        assert not second.offline  # the waiter made an exact reservation instead
        assert not second.leases
        assert calls == 2
        ledger.settle(first, CENT, {})
        ledger.settle(second, CENT, {})
        assert await ledger.flush() == 0
        status = await ledger.read("team")
        assert (status.spent_usd, status.reserved_usd) == (Decimal("0.02"), 0)
        await ledger.aclose()

    run(main())


@pytest.mark.parametrize("policy", ["deny", "allow"])
def test_an_outage_while_leasing_follows_the_policy(policy: Any) -> None:
    async def main() -> None:
        ledger = AsyncLedger("memory://", [TEAM], lease_fraction=0.5, on_store_error=policy)

        async def down(*args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailableError("test://", "connection refused")

        inner = ledger.store.reserve
        ledger.store.reserve = down  # type: ignore[method-assign]
        if policy == "deny":
            with pytest.raises(bb.StoreUnavailableError):
                await ledger.reserve(CALL, "m", None, CENT, {})
        else:
            offline = await ledger.reserve(CALL, "m", None, CENT, {})
            assert offline.offline
            assert not offline.leases
            ledger.settle(offline, CENT, {})
        assert ledger.leases_live == 0
        ledger.store.reserve = inner  # type: ignore[method-assign]
        back = await ledger.reserve(CALL, "m", None, CENT, {})
        assert back.leases
        ledger.settle(back, CENT, {})
        assert await ledger.flush() == 0
        status = await ledger.read("team")
        assert status.spent_usd == Decimal("0.01") * (2 if policy == "allow" else 1)
        assert status.reserved_usd == 0
        await ledger.aclose()

    run(main())


# -- retirement by a loop task, renewal by the async hold keeper ---------------------------------------------


def test_an_idle_loops_lease_is_retired_by_a_loop_task(store_uri: str) -> None:
    async def main() -> None:
        ledger = AsyncLedger(store_uri, [TEAM], lease_fraction=0.5, lease_seconds=0.1)
        ledger.settle(await ledger.reserve(CALL, "m", None, 10 * CENT, {}), 7 * CENT, {})
        assert ledger.leases_live == 1

        async def closed() -> bool:
            found = await state(ledger, TEAM)
            return found.held_usd == 0 and found.spent_usd == 7 * CENT

        # No call, no flush: only the loop task can retire the lease, and the settler send its spend.
        await wait_for(closed, 3.0, "the idle lease to be retired and settled")
        assert ledger.leases_live == 0
        assert (await state(ledger, TEAM)).active == 0
        await ledger.aclose()

    run(main())


def test_leases_left_by_a_closed_loop_are_retired_from_the_next_one() -> None:
    ledger = AsyncLedger("memory://", [TEAM], lease_fraction=0.5, lease_seconds=0.3)

    async def first() -> None:
        ledger.settle(await ledger.reserve(CALL, "m", None, 10 * CENT, {}), 7 * CENT, {})

    async def second() -> None:
        # Admitted by the lease the first loop took; then idle: the new loop's task retires the lease.
        call = await ledger.reserve(CALL, "m", None, 10 * CENT, {})
        assert call.leases
        ledger.settle(call, 7 * CENT, {})

        async def closed() -> bool:
            found = await state(ledger, TEAM)
            return found.held_usd == 0 and found.spent_usd == 14 * CENT

        await wait_for(closed, 3.0, "the lease left by the first loop to be retired and settled")
        await ledger.aclose()

    run(first())  # torn down without closing the ledger
    assert ledger.leases_live == 1
    run(second())
    assert ledger.leases_live == 0


def test_a_lease_stays_held_while_a_call_it_admitted_runs_longer_than_the_ttl(store_uri: str) -> None:
    ttl = 1.0

    async def main() -> None:
        ledger = AsyncLedger(store_uri, [TEAM], lease_fraction=0.5, lease_seconds=0.2, reservation_ttl=ttl)
        call = await ledger.reserve(CALL, "m", None, 10 * CENT, {})
        assert call.leases
        # Past the lease's time and its store deadline (0.2 s + TTL): retired, but its call still runs.
        await asyncio.sleep(2.5 * ttl)
        assert ledger.leases_live == 0
        found = await state(ledger, TEAM)
        assert (found.held_usd, found.active) == (5 * 10**8, 1)
        assert ledger.holds_renewed >= 1
        ledger.settle(call, 6 * CENT, {})  # the lease's last call: it closes now
        assert await ledger.flush() == 0
        found = await state(ledger, TEAM)
        assert (found.held_usd, found.active, found.spent_usd) == (0, 0, 6 * CENT)
        await ledger.aclose()

    run(main())


# -- request limits -----------------------------------------------------------------------------------------

REQUEST_LIMIT = 30


def test_tasks_never_admit_more_than_the_request_limit_with_leases(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))
    budget = Budget("rpm", window="lifetime", limit_requests=REQUEST_LIMIT)
    fake.fail_next("converse", times=4)  # released calls give their request back to the lease
    outcomes: dict[str, int] = {"ok": 0, "refused": 0, "failed": 0}
    units: set[str] = set()

    async def main() -> None:
        options = {"store": store_uri, "budgets": [budget], "lease_fraction": 0.2, "lease_seconds": 60}
        async with wrapped(fake, records, **options) as client:
            ledger = client.bedrock_budget_meter.guard.ledger
            left = iter(range(80))

            async def worker() -> None:
                for _ in left:
                    try:
                        await converse(client)
                    except bb.BudgetExceededError as refused:
                        units.add(refused.unit)
                        outcomes["refused"] += 1
                        continue
                    except client.exceptions.ThrottlingException:
                        outcomes["failed"] += 1
                        continue
                    outcomes["ok"] += 1

            await asyncio.gather(*(worker() for _ in range(8)))
            assert ledger.leases_taken > 1
            assert await ledger.flush() == 0
            found = await state(ledger, budget)
            assert (found.spent_requests, found.held_requests, found.active) == (outcomes["ok"], 0, 0)
            await ledger.aclose()

    run(main())
    assert outcomes["failed"] == 4
    assert units == {"requests"}
    assert outcomes["ok"] + outcomes["refused"] + outcomes["failed"] == 80
    # At most the limit; and exactly the limit, since the released requests came back long before the end.
    assert outcomes["ok"] == REQUEST_LIMIT
    assert fake.request_count == outcomes["ok"] + outcomes["failed"]


# -- a killed holder ----------------------------------------------------------------------------------------


@pytest.mark.redis
def test_a_killed_async_lease_holders_lease_expires_and_its_capacity_returns(
    fake: FakeBedrock, redis_url: str, request: pytest.FixtureRequest
) -> None:
    check_killed_lease_holder(fake, redis_url, request, _async_budget_worker.lease_then_hold)
