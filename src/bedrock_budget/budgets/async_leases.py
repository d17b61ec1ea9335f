"""Capacity leases on an event loop: the bookkeeping of :class:`~bedrock_budget.budgets.leases.LeaseBookCore`
(the rules are in :mod:`bedrock_budget.budgets.leases`) with its store call awaited, for the
:class:`~bedrock_budget.budgets.async_ledger.AsyncLedger`.

- A call admitted from a live lease is admitted by :meth:`LeaseBookCore.admit`: in memory, synchronously,
  with no store call and no await.
- Taking leases is one awaited store reservation (the one the sync book makes), sent from a task of its
  own. A task needing a counter whose lease is being requested waits for that request's answer instead of
  sending another, so tasks arriving together take one lease, not one each; requests for other counters
  go out at the same time (a future per counter, never a lock held across an await).
- A task cancelled while its request is in flight leaves the request to finish: granted leases are
  installed for the calls that follow, and close for nothing when none uses them, so nothing stays held.
- Leases whose time is over are retired by a loop task, started with the first lease and gone when none
  is live; the ledger's async hold keeper renews their holds, and its async settler sends the settlement
  of each lease that closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from bedrock_budget.budgets.async_settling import LoopBound
from bedrock_budget.budgets.leases import Lease, LeaseBookCore, OnClosed, TrackLease
from bedrock_budget.budgets.lines import ReservationLine
from bedrock_budget.stores.asyncio_base import AsyncStore
from bedrock_budget.stores.base import CounterRef, Hold

__all__ = ["AsyncLeaseBook"]

log = logging.getLogger("bedrock_budget.leases")

#: Rounds of admit → wait or request before a call gives up on leases and takes the ordinary path. Two
#: suffice unless another task's lease came and went in between (the sync book makes two as well).
_ROUNDS: Final = 3


class AsyncLeaseBook(LoopBound, LeaseBookCore):
    """This event loop's live leases (see the module docstring)."""

    def __init__(
        self,
        fraction: float,
        seconds: float,
        on_closed: OnClosed,
        clock: Callable[[], float],
        *,
        store: AsyncStore,
        hold_ttl: float,
        new_id: Callable[[], str],
    ) -> None:
        LoopBound.__init__(self)
        self.store = store
        LeaseBookCore.__init__(self, fraction, seconds, on_closed, clock, hold_ttl=hold_ttl, new_id=new_id)

    def _reset(self) -> None:
        super()._reset()
        #: The lease request in flight per counter (on the loop only).
        self._requests: dict[CounterRef, asyncio.Task[bool]] = {}
        self._keeper: asyncio.Task[None] | None = None

    def bind(self) -> None:
        """Bind to the running loop (a closed loop is replaced: the requests and retiring task it left
        will never finish, and the leases it left are retired from the new one)."""
        loop = self._loop
        super().bind()
        if self._loop is not loop:
            self._requests.clear()
            self._keeper = None
            with self._lock:
                if self._live:
                    self._start_keeper()

    # -- admitting calls ---------------------------------------------------------------------------------

    async def acquire(
        self, lines: Sequence[ReservationLine], now: float, track: TrackLease
    ) -> tuple[Lease, ...] | None:
        """Admit a call against live leases, taking new ones where needed (at most one store round trip;
        ``track`` hears of each new lease). None: the call takes the ordinary path. Raises the store's
        :class:`~bedrock_budget.errors.StoreError`."""
        self.bind()
        for _ in range(_ROUNDS):
            leases = self.admit(lines, now)
            if leases is not None:
                return leases
            pending = {task for line in lines if (task := self._requests.get(line.ref)) is not None}
            if pending:
                await asyncio.wait(pending)
                if not all(_granted(task) for task in pending):
                    return None  # refused, or the store failed: the ordinary path decides
                continue
            planned = self.plan(lines)
            if planned is None:
                return None
            missing, holds = planned
            if not missing:
                continue
            request = self._spawn(self._request(self._new_id(), missing, holds, now, track))
            request.add_done_callback(_retrieve)
            for line in missing:
                self._requests[line.ref] = request
            # Shielded: cancelling this call must not cancel a request the store may already have granted.
            if not await asyncio.shield(request):
                return None
        return None

    async def _request(
        self,
        lease_id: str,
        lines: Sequence[ReservationLine],
        holds: Sequence[Hold],
        now: float,
        track: TrackLease,
    ) -> bool:
        try:
            result = await self.store.reserve(
                lease_id, holds, now_ms=int(now * 1000), deadline_ms=self.deadline_ms(now)
            )
            return self.granted(lease_id, lines, holds, result, now, track)
        finally:
            this = asyncio.current_task()
            for line in lines:
                if self._requests.get(line.ref) is this:
                    del self._requests[line.ref]

    async def settled(self) -> None:
        """Wait for the lease requests in flight (their leases are installed when this returns)."""
        while self._requests:
            await asyncio.wait(set(self._requests.values()))

    # -- retiring ----------------------------------------------------------------------------------------

    def _start_keeper(self) -> None:
        # Called with the lock held, on the loop (leases are installed by request tasks). An idle loop's
        # leases must still close on time, or the capacity they hold stays stranded until their deadline.
        keeper = self._keeper
        if keeper is None or keeper.done():
            self._keeper = self._spawn(self._keep())

    async def _keep(self) -> None:
        period = self.retire_period
        while True:
            with self._lock:
                if not self._live:
                    return  # the next lease installed starts another task
            await asyncio.sleep(period)
            try:
                self.retire(self.clock())
            except Exception:
                # The task must outlive a fault in closing one lease, or idle leases would strand capacity.
                log.exception("retiring capacity leases failed")

    def stop(self) -> None:
        """Stop retiring leases by time (the ledger is closing and retires them all)."""
        keeper = self._keeper
        if keeper is not None and not keeper.done():
            self._on_loop(_cancel, keeper)


def _granted(request: asyncio.Task[bool]) -> bool:
    return not request.cancelled() and request.exception() is None and request.result()


def _retrieve(request: asyncio.Task[Any]) -> None:
    # A request whose caller was cancelled has nobody awaiting its outcome: a store error is the ordinary
    # path's to report, not the loop's exception handler's.
    if not request.cancelled():
        request.exception()


def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
