"""The async ledger's loop tasks: settlement batches, releases, journal replays and hold renewal.

They are the sync :class:`~bedrock_budget.budgets.settler.Settler` and
:class:`~bedrock_budget.budgets.keeper.HoldKeeper` with their store calls awaited on the event loop instead
of made on a thread: the same outage journal, the same per-batch bookkeeping
(:meth:`Settler.batch_applied`), the same renewal rules (:meth:`HoldKeeper._collect` and friends).

- ``submit`` and ``release`` never wait: they queue work for a loop task and return. They may be called
  from any thread (a stream collected by the garbage collector settles where the collector runs); off the
  loop's thread they hand the work over with ``call_soon_threadsafe``.
- Settlements are sent in batches of up to ``batch`` (one script call on Redis, one per slot on a
  cluster), after lingering ``linger`` seconds for a fuller batch, exactly as the sync background mode does.
- A batch the store does not take goes to the outage journal, replayed after the next success, when the
  store's circuit breaker closes again, or by :meth:`AsyncSettler.flush`.
- A batch cancelled with its loop (a loop torn down without closing the ledger) is journalled in memory:
  a later flush on a new loop applies it. Its holds expire at their deadline meanwhile.

With a journal file (``journal_path``, :mod:`bedrock_budget.budgets.durable`: the sync ledger's file and
format, so a sync process replays what an async one left and the reverse):

- ``submit`` writes the settlement to the file before queueing it, so a process killed with ``kill -9``
  keeps it: one JSON line (about 1 KB) and one ``write`` on the caller's thread (the loop's, mostly), some
  tens of microseconds, as on a sync caller's thread.
- The fsync runs in a worker thread (``asyncio.to_thread``), never on the loop, before a batch holding a
  settlement written since the last fsync goes out. One fsync covers everything queued when it starts, so a
  backlog of many batches costs one fsync, not one per batch. Replays of the outage journal fsync
  first too.
- Once the store has taken a settlement, a line marking it applied (one ``write``, on the loop).
- Settlements dead processes left in the directory are taken over when the ledger is made (reading and
  rewriting files: in a worker thread when a loop is running, at once otherwise) and replayed through the
  outage journal, on the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

from bedrock_budget.budgets.durable import JournalFile
from bedrock_budget.budgets.keeper import HoldKeeper
from bedrock_budget.budgets.settler import OnApplied, Settler
from bedrock_budget.errors import StoreError
from bedrock_budget.stores.asyncio_base import AsyncStore
from bedrock_budget.stores.base import CounterRef, SettleRequest, Store

log = logging.getLogger("bedrock_budget.ledger")


class LoopBound:
    """Work started on one event loop, from whichever thread asks."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def bind(self) -> None:
        """Bind to the running loop (called on every reservation; a closed loop is replaced)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._loop = asyncio.get_running_loop()

    def _on_loop(self, function: Callable[..., None], *args: Any) -> bool:
        """Run ``function(*args)`` on the bound loop: now when called there, soon otherwise. False when
        there is no live loop to run it on."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            function(*args)
            return True
        try:
            loop.call_soon_threadsafe(function, *args)
        except RuntimeError:  # closed in between
            return False
        return True

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A task on the bound loop (call on the loop's thread), kept referenced until it ends."""
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class AsyncSettler(LoopBound, Settler):
    """Settlements, releases and the outage journal of an :class:`AsyncLedger` (see the module docstring)."""

    def __init__(
        self,
        store: AsyncStore,
        *,
        now_ms: Callable[[], int],
        on_applied: OnApplied,
        journal_size: int,
        replay_batch: int,
        batch: int,
        linger: float,
        file: JournalFile | None = None,
    ) -> None:
        LoopBound.__init__(self)
        # The sync settler's journal and bookkeeping; its store calls are replaced by awaited ones below.
        Settler.__init__(
            self,
            cast(Store, store),
            now_ms=now_ms,
            on_applied=on_applied,
            journal_size=journal_size,
            replay_batch=replay_batch,
        )
        self.astore = store
        self.batch = batch
        self.linger = linger
        self._entries: deque[SettleRequest] = deque()
        self._in_flight = 0
        self._worker: asyncio.Task[None] | None = None
        self._replaying_task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        #: Of the queued settlements, how many (the newest) were written since the last fsync began.
        self._unsynced = 0
        # Not given to Settler.__init__, whose takeover would read and rewrite files on a running loop.
        self.file = file
        if file is not None:
            self._take_over(file)

    def _take_over(self, file: JournalFile) -> None:
        """Adopt the settlements dead processes left in the journal directory, for replay."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            for request in file.take_over():  # no loop to block: at once, as the sync ledger does
                self.journal.append(request)
            return
        self.bind()
        self._spawn(self._adopt(file))

    async def _adopt(self, file: JournalFile) -> None:
        try:
            adopted = await asyncio.to_thread(file.take_over)
        except OSError as exc:
            self.file_errors += 1
            log.error("could not take over the settlement journal files of stopped processes: %s", exc)
            return
        for request in adopted:
            self.journal.append(request)
        self.maybe_replay()

    async def _sync_file(self) -> None:
        """fsync the journal file in a worker thread (an fsync takes milliseconds on a disk)."""
        if self.file is not None:
            try:
                await asyncio.to_thread(self.durable, self.file.sync)
            except RuntimeError as exc:  # no worker thread (the loop is shutting down): the write stands
                self.file_errors += 1
                log.error("could not fsync the settlement journal file: %s", exc)

    @property
    def pending(self) -> int:
        return len(self._entries) + self._in_flight

    # -- settling ---------------------------------------------------------------------------------------

    def submit(self, request: SettleRequest) -> None:
        """Queue a settlement for the next batch; never waits."""
        if self.file is not None:
            # On disk before it is queued, so a killed process keeps it (one write; fsync'd off the loop).
            self.durable(self.file.add, request)
        if not self._on_loop(self._enqueue, request):
            # No loop to send it from (the loop that made the call is gone): keep it for the next flush.
            self.journal.append(request)

    def _enqueue(self, request: SettleRequest) -> None:
        self._entries.append(request)
        self._unsynced += 1
        self._idle.clear()
        if self._worker is None:
            self._worker = self._spawn(self._work())

    async def _work(self) -> None:
        try:
            while self._entries:
                if self.linger > 0 and len(self._entries) < self.batch:
                    await asyncio.sleep(self.linger)
                take = min(self.batch, len(self._entries))
                batch = [self._entries.popleft() for _ in range(take)]
                self._in_flight += take
                # The newest queued settlements are the unsynced ones: does this batch hold any?
                unsynced = self._unsynced > len(self._entries)
                if unsynced:
                    self._unsynced = 0  # the fsync about to start covers everything queued now
                try:
                    await self._send(batch, sync_first=unsynced)
                finally:
                    self._in_flight -= take
        finally:
            self._worker = None
            if not self._entries:
                self._idle.set()
            else:  # cancelled with entries still queued: keep them for a flush
                while self._entries:
                    self.journal.append(self._entries.popleft())
                self._idle.set()
            self._unsynced = 0

    async def _send(self, batch: list[SettleRequest], *, sync_first: bool = False) -> None:
        try:
            if sync_first:
                await self._sync_file()  # the batch's records reach the disk before it goes out
            results = await self.astore.settle_many(batch, now_ms=self._now_ms())
        except StoreError as exc:
            results = [exc] * len(batch)
        except asyncio.CancelledError:
            for request in batch:  # may or may not have been applied: replaying it is safe
                self.journal.append(request)
            raise
        except Exception as exc:
            log.exception("batched settlement failed; journalling %d entries", len(batch))
            error = StoreError(f"settlement failed: {type(exc).__name__}: {exc}")
            results = [error] * len(batch)
        if self.batch_applied(batch, results):
            self.maybe_replay()

    # -- releasing --------------------------------------------------------------------------------------

    def release_later(
        self, reservation_id: str, refs: Sequence[CounterRef], failed: Callable[[StoreError], None]
    ) -> None:
        """Drop holds in the store from a loop task; never waits. A release that cannot reach the store is
        reported to ``failed`` and the hold expires at its deadline."""
        self._on_loop(self._start_release, reservation_id, refs, failed)

    def _start_release(
        self, reservation_id: str, refs: Sequence[CounterRef], failed: Callable[[StoreError], None]
    ) -> None:
        self._spawn(self._release(reservation_id, refs, failed))

    async def _release(
        self, reservation_id: str, refs: Sequence[CounterRef], failed: Callable[[StoreError], None]
    ) -> None:
        try:
            await self.astore.release(reservation_id, refs, now_ms=self._now_ms())
        except StoreError as exc:
            failed(exc)

    # -- the outage journal -----------------------------------------------------------------------------

    def maybe_replay(self) -> None:
        if len(self.journal) and self._replaying_task is None:
            self._on_loop(self._start_replay, self.replay_batch)

    def replay_all(self) -> None:
        # The store's circuit breaker closed again (on its probe thread): replay on the loop.
        if len(self.journal):
            self._on_loop(self._start_replay, None)

    def _start_replay(self, limit: int | None) -> None:
        if self._replaying_task is None and len(self.journal):
            self._replaying_task = self._spawn(self._replay_async(limit))

    async def _replay_async(self, limit: int | None) -> None:
        try:
            # Settlements journalled while no loop could queue them were written but not yet fsync'd.
            await self._sync_file()
            done = 0
            while limit is None or done < limit:
                request = self.journal.peek()
                if request is None:
                    break
                try:
                    (result,) = await self.astore.settle_many([request], now_ms=self._now_ms())
                except StoreError as exc:
                    result = exc
                if isinstance(result, StoreError):
                    self.store_errors += 1
                    break
                self.journal.pop(request)
                done += 1
                if self.file is not None:
                    self.durable(self.file.done, (request,))
                try:
                    self._on_applied(request, result)
                except Exception:
                    log.exception("alerting for reservation %s failed", request.reservation_id)
        finally:
            self._replaying_task = None

    async def flush(self) -> int:  # type: ignore[override]
        """Send what is queued, wait for releases in flight, replay the whole journal; returns how many
        settlements the store has not taken."""
        self.bind()
        await self._idle.wait()
        others = [t for t in self._tasks if not t.done() and t is not asyncio.current_task()]
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        # After those: a batch or a takeover of the journal file may have started a replay meanwhile.
        while self._replaying_task is not None:
            await asyncio.shield(self._replaying_task)
        if len(self.journal):
            await self.astore.try_now()
            await self._replay_async(None)
        return len(self.journal) + self.pending


class AsyncHoldKeeper(LoopBound, HoldKeeper):
    """The hold keeper with its renewals awaited by a loop task instead of a thread."""

    def __init__(
        self, store: AsyncStore, *, ttl: float, max_call_seconds: float, clock: Callable[[], float]
    ) -> None:
        LoopBound.__init__(self)
        HoldKeeper.__init__(self, cast(Store, store), ttl=ttl, max_call_seconds=max_call_seconds, clock=clock)
        self.astore = store

    def _start(self) -> None:
        # Called by track() with the lock held, on the loop (reservations are made there).
        try:
            self.bind()
        except RuntimeError:
            return  # no running loop: holds expire after their TTL
        self._thread = self._spawn(self._keep())

    async def _keep(self) -> None:
        try:
            while not self._stop.is_set():
                await asyncio.sleep(self.period)
                if self._stop.is_set():
                    return
                await self.atick()
                with self._lock:
                    if not self._tracked:
                        return
        finally:
            with self._lock:
                self._thread = None

    async def atick(self, now: float | None = None) -> int:
        """:meth:`HoldKeeper.tick` awaited. Never raises."""
        if now is None:
            now = self.clock()
        due, overdue = self._collect(now)
        renewed = 0
        renewals = self._renewals(due)
        if renewals:
            now_ms = int(now * 1000)
            try:
                live = await self.astore.renew(
                    renewals, now_ms=now_ms, deadline_ms=now_ms + int(self.ttl * 1000)
                )
            except Exception as exc:
                self._renew_failed(exc, due)
            else:
                renewed = self._renewed(due, live, now)
        self._run_overdue(overdue)
        return renewed

    def stop(self) -> None:
        super().stop()
        task = self._thread
        if isinstance(task, asyncio.Task) and not task.done():
            self._on_loop(_cancel, task)


def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
