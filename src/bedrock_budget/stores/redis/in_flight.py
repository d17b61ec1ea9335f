"""A first-come, first-served bound on the script calls an async store has in flight.

``asyncio.Semaphore`` would do, but on Python 3.11 every ``acquire`` scans all its waiters (``locked()``),
so with a thousand calls waiting for a hundred connections each acquire costs tens of microseconds of the
loop's time, a thousand times over. This one is O(1) per acquire and release: a count, and a queue of
futures that a release hands its slot to directly.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class InFlight:
    """At most ``limit`` holders at once; the others wait in arrival order. Bound to the running loop of
    its first waiter, like asyncio's own primitives."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the limit must be at least 1")
        self.limit = limit
        self.holders = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self.holders < self.limit and not self._waiters:
            self.holders += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot just as it was cancelled: pass it on
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(None)  # the slot goes straight to it: holders stays the same
                return
        self.holders -= 1
