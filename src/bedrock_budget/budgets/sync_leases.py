"""The sync ledger's lease book: leases taken with a store call on the caller's thread and retired by a
thread of its own. What a lease is, and why it never overshoots: :mod:`bedrock_budget.budgets.leases`
(the bookkeeping both ledgers share); the async ledger's book is :mod:`bedrock_budget.budgets.async_leases`.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence

from bedrock_budget.budgets.leases import Lease, LeaseBookCore, OnClosed, TrackLease
from bedrock_budget.budgets.lines import ReservationLine
from bedrock_budget.stores.base import Store

log = logging.getLogger("bedrock_budget.leases")


class LeaseBook(LeaseBookCore):
    """The lease book of the sync :class:`~bedrock_budget.budgets.ledger.Ledger`: leases taken with the
    store call made on the caller's thread, retired by a thread of its own."""

    def __init__(
        self,
        fraction: float,
        seconds: float,
        on_closed: OnClosed,
        clock: Callable[[], float],
        *,
        store: Store,
        hold_ttl: float,
        new_id: Callable[[], str],
    ) -> None:
        self.store = store
        super().__init__(fraction, seconds, on_closed, clock, hold_ttl=hold_ttl, new_id=new_id)

    def _reset(self) -> None:
        super()._reset()
        self._keeper: threading.Thread | None = None
        self._stop = threading.Event()

    def acquire(
        self, lines: Sequence[ReservationLine], now: float, track: TrackLease
    ) -> tuple[Lease, ...] | None:
        """Admit a call against live leases, taking new ones where needed (one store round trip; ``track``
        hears of each new lease). None: the call takes the ordinary path. Raises the store's
        :class:`~bedrock_budget.errors.StoreError`."""
        for _ in range(2):
            leases = self.admit(lines, now)
            if leases is not None:
                return leases
            planned = self.plan(lines)
            if planned is None:
                return None
            missing, holds = planned
            if not missing:
                continue  # another thread leased them meanwhile
            lease_id = self._new_id()
            result = self.store.reserve(
                lease_id, holds, now_ms=int(now * 1000), deadline_ms=self.deadline_ms(now)
            )
            if not self.granted(lease_id, missing, holds, result, now, track):
                return None
        return None

    def _start_keeper(self) -> None:
        # Called with the lock held. An idle process's leases must still close on time, or the capacity
        # they hold stays stranded until their store deadline.
        if self._keeper is not None and self._keeper.is_alive():
            return
        keeper = threading.Thread(
            target=_keep, args=(weakref.ref(self), self._stop), name="bedrock-budget-leases", daemon=True
        )
        try:
            keeper.start()
        except RuntimeError:
            return  # interpreter shutdown: the exit flush retires what is left
        self._keeper = keeper

    def stop(self) -> None:
        self._stop.set()


def _keep(book_ref: weakref.ref[LeaseBook], stop: threading.Event) -> None:
    while True:
        book = book_ref()
        if book is None:
            return
        period = book.retire_period
        with book._lock:
            idle = not book._live
            if idle:
                book._keeper = None
        if idle:
            return
        del book
        if stop.wait(period):
            return
        book = book_ref()
        if book is None:
            return
        try:
            book.retire(book.clock())
        except Exception:
            # The keeper must outlive a fault in closing one lease, or idle leases would strand capacity.
            log.exception("retiring capacity leases failed")
        finally:
            del book
