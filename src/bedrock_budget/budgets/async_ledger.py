"""Budgets enforced from an event loop: the :class:`~bedrock_budget.budgets.ledger.Ledger`'s rules with its
store calls awaited, for the async (aiobotocore) client.

    reservation = await ledger.reserve(attribution, model_id, model_family, cost_nanos, tokens)
    ...                                     # the Bedrock call
    ledger.settle(reservation, actual_cost_nanos, actual_tokens)   # queued for a loop task; never waits
    ledger.release(reservation)                                    # likewise

What is shared with the sync ledger, unchanged (:mod:`bedrock_budget.budgets.ledger_core`): budget
matching, the reservation and its holds, refusals (block, downgrade, clamp, per-call caps, unattributed
calls), warnings, alert decisions, overruns and spend-ledger entries. The store is the same too: a Redis
URI gives a ``redis.asyncio`` store running the same Lua scripts on the same keys as the sync store
(:mod:`bedrock_budget.stores.asyncio_base`), so sync and async processes share one budget, and the
``memory://`` store is used directly.

What differs is only where the I/O happens:

- ``reserve`` is the one awaited store round trip of a call. A refusal raises before the Bedrock call.
  A reservation cancelled while the store is answering is left to finish and, if granted, released.
- settlements always go out in batches from a loop task (the sync ledger's ``settle_mode="background"``;
  see :mod:`bedrock_budget.budgets.async_settling`), and so do releases; neither blocks the caller.
- holds of long calls are renewed by a loop task, by the sync keeper's rules (``budgets.keeper``).
- capacity leases (``lease_fraction``; the rules are in ``budgets.leases``): a call a live lease admits is
  admitted in memory, with no store call and no await; taking a lease is the one awaited round trip, made
  once per counter however many tasks need it at once; leases are retired by a loop task, renewed by the
  hold keeper's, and settled by the settler's (:mod:`bedrock_budget.budgets.async_leases`).
- outages: the same policy (``on_store_error``: ``deny`` raises ``StoreUnavailableError`` from ``reserve``,
  ``allow`` proceeds offline and journals the spend), the same bounded journal, replayed after the next
  success or when the store's circuit breaker closes, on the loop.
- alert sinks never run on the loop (:mod:`bedrock_budget.alerts.loop_safe`).
- the journal file (``journal_path``): the sync ledger's own file and format
  (:mod:`bedrock_budget.budgets.durable`), so queued and outage spend survives ``kill -9`` and the next
  process, sync or async, replays it exactly once. Each settlement is one ``write`` before it is queued;
  the fsync and the takeover of dead processes' files run in worker threads, never on the loop.

Call ``await ledger.aclose()`` (or ``async with``) before the loop ends: it sends queued settlements and
replays the journal. A loop torn down without it loses queued spend as a killed process would (their holds
expire after ``reservation_ttl``), unless the ledger is flushed later from another loop or, with
``journal_path``, replayed by the next process.

Every option of the sync ledger is offered except ``settle_mode`` (always background, above). The journal
file (``journal_path``) is the sync ledger's own (:mod:`bedrock_budget.budgets.durable`): written before a
settlement is queued, fsync'd and taken over in worker threads, so a sync or an async process replays it.
Capacity leases are the sync ledger's bookkeeping with awaited requests
(:mod:`bedrock_budget.budgets.async_leases`). CountTokens estimates (``count_tokens=True``) are the guard's,
awaited before ``reserve`` (:mod:`bedrock_budget.budgets.async_enforcement`); budgets published in the
store (``budgets="store"``) are followed as for the sync ledger (:mod:`bedrock_budget.budgets.live`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from bedrock_budget.alerts.loop_safe import loop_safe
from bedrock_budget.alerts.model import Alert
from bedrock_budget.alerts.sinks import AlertSink
from bedrock_budget.budgets.alerting import AlertDispatcher
from bedrock_budget.budgets.async_leases import AsyncLeaseBook
from bedrock_budget.budgets.async_settling import AsyncHoldKeeper, AsyncSettler
from bedrock_budget.budgets.compiled import CompiledBudgets
from bedrock_budget.budgets.counters import LedgerCounters
from bedrock_budget.budgets.durable import JournalFile
from bedrock_budget.budgets.keeper import DEFAULT_MAX_CALL_SECONDS
from bedrock_budget.budgets.ledger_core import LedgerCore
from bedrock_budget.budgets.model import Budget
from bedrock_budget.budgets.outcomes import Reservation
from bedrock_budget.budgets.overruns import OverrunTally
from bedrock_budget.budgets.settings import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_RESERVATION_TTL,
    LedgerSettings,
    OutagePolicy,
)
from bedrock_budget.budgets.status import BudgetStatus, status_of
from bedrock_budget.budgets.unattributed import UnattributedTally
from bedrock_budget.errors import ConfigurationError, StoreError
from bedrock_budget.stores.asyncio_base import AsyncStore, DirectStore, as_async_store
from bedrock_budget.stores.base import ReserveResult, Store
from bedrock_budget.stores.tracking import Tracking

__all__ = ["ASYNC_SETTLE_BATCH", "AsyncLedger"]

#: Settlements per batch. Smaller than the sync background thread's 64: building and reading a batch's
#: script call runs on the loop, 25-170 µs of CPU per settlement with two budgets and spend tracking (half of
#: it the tracking; the high end on a slow machine), so 4 keeps each stretch well under a millisecond
#: (bench/async_budgets.py: with 8, 1.3 ms on a machine half as fast), for a few more round
#: trips.
ASYNC_SETTLE_BATCH = 4


class AsyncLedger(LedgerCore, LedgerCounters):
    """Budgets enforced against a store from one event loop (see the module docstring)."""

    _settler: AsyncSettler
    _keeper: AsyncHoldKeeper
    _leases: AsyncLeaseBook | None

    def __init__(
        self,
        store: AsyncStore | Store | str = "memory://",
        budgets: Iterable[Budget] = (),
        *,
        on_store_error: OutagePolicy = "deny",
        alert_sinks: Iterable[AlertSink | Callable[[Alert], object]] = (),
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
        journal_size: int = 10_000,
        replay_batch: int = 100,
        clock: Callable[[], float] = time.time,
        settle_batch: int = ASYNC_SETTLE_BATCH,
        settle_linger: float = 0.005,
        max_call_seconds: float = DEFAULT_MAX_CALL_SECONDS,
        lease_fraction: float | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        journal_path: str | os.PathLike[str] | None = None,
        track: bool | Iterable[str | tuple[str, ...]] | Tracking | None = True,
        store_options: Mapping[str, Any] | None = None,
    ) -> None:
        settings = LedgerSettings(
            on_store_error=on_store_error,
            reservation_ttl=reservation_ttl,
            journal_size=journal_size,
            replay_batch=replay_batch,
            settle_mode="background",
            settle_batch=settle_batch,
            settle_linger=settle_linger,
            max_call_seconds=max_call_seconds,
            lease_fraction=lease_fraction,
            lease_seconds=lease_seconds,
            journal_path=journal_path,
        )
        self.settings = settings
        self.tracking = Tracking.of(track)
        self.store, self._owns_store = as_async_store(store, **dict(store_options or {}))
        #: The memory store answers within the reserve coroutine: no task is needed to finish it.
        self._direct = type(self.store) is DirectStore
        self.on_store_error = settings.on_store_error
        self.reservation_ttl = settings.reservation_ttl
        self.max_call_seconds = settings.max_call_seconds
        self.lease_fraction = settings.lease_fraction
        self.lease_seconds = settings.lease_seconds
        self.settle_mode = settings.settle_mode
        self._clock = clock
        self._alerts = AlertDispatcher(loop_safe(s) for s in alert_sinks)
        self.unattributed = UnattributedTally()
        self.overruns = OverrunTally()
        self._leases = self._lease_book(AsyncLeaseBook, self.store, settings, clock)
        self._follower = None
        self._definitions_store: Store | None = None  # a sync store of our own the follower reads
        self._closed = False
        self._budgets = CompiledBudgets((), self.unattributed)
        self.set_budgets(budgets)
        self._keeper = AsyncHoldKeeper(
            self.store, ttl=self.reservation_ttl, max_call_seconds=self.max_call_seconds, clock=clock
        )
        self._settler = AsyncSettler(
            self.store,
            now_ms=self._now_ms,
            on_applied=self._settled,
            journal_size=settings.journal_size,
            replay_batch=settings.replay_batch,
            batch=settings.settle_batch,
            linger=settings.settle_linger,
            file=JournalFile(journal_path) if journal_path is not None else None,
        )

    def add_alert_sink(self, sink: AlertSink | Callable[[Alert], object]) -> None:
        self._alerts.add(loop_safe(sink))

    # -- the hot path ---------------------------------------------------------------------------------------

    async def reserve(
        self,
        attribution: Mapping[str, str],
        model_id: str,
        model_family: str | None,
        cost_nanos: int,
        tokens: Mapping[str, int],
    ) -> Reservation:
        """Hold a call's worst case against every applicable budget, or raise its refusal (see
        :meth:`Ledger.reserve <bedrock_budget.budgets.ledger.Ledger.reserve>`)."""
        reservation, holds = self._plan(attribution, model_id, model_family, cost_nanos, tokens)
        self._settler.bind()
        if not holds:
            return reservation
        if self._leases is not None and not self._closed:
            self._leases.bind()
            # Most calls: a live lease admits them here, in memory, with no store call and no await.
            leases = self._leases.admit(reservation.lines, reservation.created_at)
            if leases is None:
                try:
                    leases = await self._leases.acquire(
                        reservation.lines, reservation.created_at, self._track_lease
                    )
                except StoreError as exc:
                    return self._reserve_offline(reservation, exc)
            if leases is not None:
                reservation.leases = leases
                return reservation
        call = self.store.reserve(
            reservation.id,
            holds,
            now_ms=int(reservation.created_at * 1000),
            deadline_ms=int(reservation.deadline * 1000),
        )
        try:
            if self._direct:
                result = await call
            else:
                # A cancellation must not leave a hold nobody will settle: the store call runs to its end
                # and a granted hold is released then.
                task = asyncio.ensure_future(call)
                try:
                    result = await asyncio.shield(task)
                except asyncio.CancelledError:
                    task.add_done_callback(partial(self._cancelled, reservation))
                    raise
        except StoreError as exc:
            return self._reserve_offline(reservation, exc)
        self._interpret(reservation, result)
        self._settler.maybe_replay()
        return reservation

    def _cancelled(self, reservation: Reservation, task: asyncio.Future[ReserveResult]) -> None:
        if task.cancelled() or task.exception() is not None or not task.result().granted:
            return
        self.release(reservation)

    def settle(self, reservation: Reservation, cost_nanos: int, tokens: Mapping[str, int]) -> None:
        """Record the actual cost and tokens, replacing the hold, exactly once. Queued for a loop task:
        never waits, and may be called from any thread."""
        request = self._settlement(reservation, cost_nanos, tokens)
        if request is not None:
            self._settler.submit(request)

    def release(self, reservation: Reservation) -> None:
        """Drop the hold of a call that failed before inference, from a loop task. Never raises for store
        errors: an unreleased hold expires at its deadline."""
        refs = self._releasing(reservation)
        if refs:
            self._settler.release_later(reservation.id, refs, partial(self._release_failed, reservation))

    # -- reads ---------------------------------------------------------------------------------------------

    async def read(self, budget: str, scope: Mapping[str, str] | None = None) -> BudgetStatus:
        """The current window of one budget for concrete scope values, after this ledger's queued
        settlements (see :meth:`Ledger.read <bedrock_budget.budgets.ledger.Ledger.read>`)."""
        from bedrock_budget.reporting.budget_admin import window_ref

        config = self._budgets.budget(budget)
        await self.flush()
        now = self._clock()
        ref = window_ref(config, scope, now)
        (state,) = await self.store.read([ref], now_ms=int(now * 1000))
        return status_of(config.for_values(ref.scope), state)

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Send queued settlements and releases and replay the journal now; returns how many settlements
        the store has not taken yet (0 when it took all). Retires this ledger's leases first, so their
        spend is sent too."""
        if self._leases is not None:
            self._settler.bind()
            self._leases.retire()
        return await self._settler.flush()

    def follow_published(self, refresh_seconds: float = 1.0, *, store: Store | str | None = None) -> Any:
        """Enforce the budgets published in the store, following their changes (``budgets.live``). The
        follower reads them from a thread of its own, through a sync connection: ``store`` (a URI or a sync
        store naming the same data), by default the sync store behind this ledger's. Loading the first set
        is one blocking read, made here."""
        reading: Store | None
        if isinstance(store, str):
            from bedrock_budget.stores import from_uri

            reading = self._definitions_store = from_uri(store, prefix=self.store.prefix)
        else:
            reading = store if store is not None else getattr(self.store, "sync", None)
        if reading is None:
            raise ConfigurationError(
                "follow_published(store=...) needs the store's URI (or a sync store) to read the "
                "published budgets from"
            )
        return self._follow(reading, refresh_seconds)

    async def aclose(self) -> None:
        """Flush (best effort), stop renewing, close the alert sinks (in a worker thread: they join theirs)
        and a store this ledger made."""
        if self._closed:
            return
        self._closed = True
        if self._leases is not None:
            await self._leases.settled()  # a lease granted after the flush below would stay held
            self._leases.stop()
        self._keeper.stop()
        if self._follower is not None:
            await asyncio.to_thread(self._follower.stop)
        if self._definitions_store is not None:
            self._definitions_store.close()
        try:
            remaining = await self.flush()
            if remaining:
                from bedrock_budget.budgets.ledger_core import log

                log.error("closing with %d settlements the budget store never took", remaining)
        finally:
            # Deletes the file when nothing is pending; else fsyncs it for the next process: off the loop.
            await asyncio.to_thread(self._settler.close_file)
            await asyncio.to_thread(self._alerts.close)
            if self._owns_store:
                await self.store.aclose()

    async def __aenter__(self) -> AsyncLedger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
