"""The bound on an async store's script calls in flight: never more holders than the limit, waiters served in
arrival order, and cancelled waiters (before or just after being handed a slot) never leak one."""

from __future__ import annotations

import asyncio

import pytest

from bedrock_budget.stores.redis.in_flight import InFlight


def test_bound_order_and_cancellation() -> None:
    async def main() -> None:
        limit = InFlight(3)
        peak = 0
        order: list[int] = []

        async def hold(i: int, seconds: float) -> None:
            nonlocal peak
            async with limit:
                peak = max(peak, limit.holders)
                order.append(i)
                await asyncio.sleep(seconds)

        tasks = [asyncio.create_task(hold(i, 0.01)) for i in range(50)]
        await asyncio.sleep(0)
        for task in tasks[10:20]:  # cancelled while waiting
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert peak == 3
        assert order == [*range(10), *range(20, 50)]
        assert limit.holders == 0

        # Handed a slot and cancelled in the same loop turn: the slot passes on.
        async with limit:
            async with limit:
                async with limit:
                    waiter = asyncio.create_task(hold(99, 0))
                    late = asyncio.create_task(hold(100, 0))
                    await asyncio.sleep(0)
                # One slot released: it goes to `waiter`, which is cancelled before it runs.
                waiter.cancel()
            await asyncio.gather(waiter, late, return_exceptions=True)
        assert 100 in order
        assert 99 not in order
        assert limit.holders == 0

    asyncio.run(main())


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        InFlight(0)
