"""Getting settlements into the store: at once (``settle_mode="sync"``) or batched by a background thread,
with the outage journal, its replay, the journal file and flushing.

Outage journal: whatever the ledger's outage policy (``on_store_error``), a settlement the store cannot
take goes to a bounded local journal (:attr:`Ledger.journal_depth`) that is replayed, oldest first, after
the next successful store operation or on :meth:`Ledger.flush` / close. When the journal is full, ``allow``
stops allowing (``reserve`` raises ``StoreUnavailableError``) and any settlement that still cannot be kept
is logged as an error and counted (:attr:`Ledger.journal_dropped`).
With a store's circuit breaker (:mod:`bedrock_budget.stores.breaker`), the whole journal is replayed as soon
as the breaker's probe finds the store back, on the probe's thread, so calls do not wait for the replay.

Settlement mode (``settle_mode``): ``"sync"`` (the default) settles inside :meth:`Ledger.settle`, one store
round trip. ``"background"`` makes ``settle`` queue the settlement and return, so a call costs one
synchronous round trip (the reservation); a daemon thread sends the queue in batches
(:meth:`Store.settle_many`: one script call for the whole batch on Redis, one per slot on a cluster).

- Exactly once: a store applies a reservation id's settlement at most once per counter, so a batch that is
  sent again after a connection error (by redis-py's retry, or from the journal) changes nothing twice.
- Never overshoots: until its settlement is applied, a reservation keeps holding its worst case in the
  store, so capacity is only ever overstated in the conservative direction.
- Store errors: a settlement the store cannot take goes to the journal, as in sync mode.
- Batching: woken by a settlement, the thread waits up to ``settle_linger`` seconds (5 ms) for more, and
  sends at most ``settle_batch`` (64) per call: fewer, larger batches cost less CPU per settlement.
- Backpressure: the queue holds ``settle_queue_size`` settlements; when it is full, ``settle`` settles
  synchronously instead of dropping anything.
- Shutdown: :meth:`Ledger.flush`, :meth:`Ledger.close` and interpreter exit apply everything queued. A
  process killed outright loses its queued settlements as it would lose a settlement it was about to make:
  their holds expire after ``reservation_ttl``, so the budget gets its capacity back but not the spend —
  unless ``journal_path`` names a directory for a journal file (:mod:`bedrock_budget.budgets.durable`),
  from which the next process opening it replays them, exactly once (outage spend as well).
- Visibility: :meth:`Ledger.read`, :meth:`Ledger.status` and :meth:`Ledger.reset` apply the queue first, so
  a process sees its own spend. Other processes see it once the batch is applied (milliseconds later).
- Alert sinks run on the settle thread.
- ``release`` stays synchronous: it only ever gives capacity back.

Every settlement is one :class:`~bedrock_budget.stores.base.SettleRequest`, with its tallies computed by
whoever built it: the same value is queued, sent, journalled in memory and written to the journal file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from bedrock_budget.budgets.durable import JournalFile
from bedrock_budget.budgets.journal import Journal, SettleQueue
from bedrock_budget.errors import StoreError, StoreUnavailableError
from bedrock_budget.stores.base import SettleOutcome, SettleRequest, Store

log = logging.getLogger("bedrock_budget.ledger")

#: Called with each settlement the store took and its outcomes (the ledger sends alerts from there).
OnApplied = Callable[[SettleRequest, Sequence[SettleOutcome]], None]


class Settler:
    """Sends settlements to the store; keeps what it cannot take until it can."""

    def __init__(
        self,
        store: Store,
        *,
        now_ms: Callable[[], int],
        on_applied: OnApplied,
        journal_size: int,
        replay_batch: int,
        background: tuple[int, int, float] | None = None,
        file: JournalFile | None = None,
    ) -> None:
        self.store = store
        self._now_ms = now_ms
        self._on_applied = on_applied
        self.replay_batch = replay_batch
        self.journal = Journal(journal_size)
        self._replaying = threading.Lock()
        #: The queue of background mode, given as (capacity, batch, linger); ``None``: sent at once.
        self.queue: SettleQueue | None = None
        if background is not None:
            capacity, batch, linger = background
            self.queue = SettleQueue(self.apply_batch, capacity=capacity, batch=batch, linger=linger)
        #: Settlements with nothing but spend-ledger tracking in sync mode (a call no budget covers, a call
        #: admitted from a lease): batched off the hot path, like background settlement. Made on first use.
        self._track_queue: SettleQueue | None = None
        self._track_options = background or (10_000, 64, 0.005)
        #: The local journal file (``journal_path``; see ``budgets.durable``), or None.
        self.file = file
        #: Store operations that failed (the ledger's reservations add theirs).
        self.store_errors = 0
        #: Writes to the journal file that failed (should stay 0).
        self.file_errors = 0
        if file is not None:
            for request in file.take_over():
                self.journal.append(request)
        breaker = getattr(store, "breaker", None)
        if breaker is not None:
            # A store with a circuit breaker (``stores.breaker``): as soon as it answers again, the probe's
            # thread replays the whole journal, so calls meanwhile find the replay taken and do not wait.
            breaker.on_close(self.replay_all)

    def _queue_for(self, request: SettleRequest) -> SettleQueue | None:
        if self.queue is not None or request.spends:
            return self.queue
        queue = self._track_queue
        if queue is None:
            capacity, batch, linger = self._track_options
            queue = self._track_queue = SettleQueue(
                self.apply_batch, capacity=capacity, batch=batch, linger=linger
            )
        return queue

    def _queues(self) -> list[SettleQueue]:
        return [q for q in (self.queue, self._track_queue) if q is not None]

    def after_fork(self) -> None:
        if self._track_queue is not None:
            self._track_queue.after_fork()
        if self.queue is not None:
            self.queue.after_fork()
        if self.file is not None:
            self.file.after_fork()

    def outage(self, exc: StoreError, policy: str) -> None:
        """A reservation the store could not take: raise :class:`StoreUnavailableError` unless the outage
        policy is ``allow`` and the journal has room for the call's spend."""
        self.store_errors += 1
        store = self.store.name
        if policy == "deny":
            if isinstance(exc, StoreUnavailableError):
                store, reason = exc.store, exc.reason
            else:
                reason = str(exc)
            raise StoreUnavailableError(store, f"{reason}; outage policy is 'deny'") from exc
        if self.journal.full:
            raise StoreUnavailableError(
                store, f"{exc}; the local spend journal is full, so no more spend can be recorded"
            ) from exc
        log.warning(
            "budget store %s unavailable (%s); proceeding without a hold (policy 'allow')", store, exc
        )

    # -- sending -------------------------------------------------------------------------------------------

    def submit(self, request: SettleRequest) -> None:
        """Queue the settlement (background mode, room in the queue) or send it now; journal it when the
        store does not take it."""
        durable = self.file
        queue = self._queue_for(request)
        if durable is not None and queue is not None:
            # Queued in memory until the batch goes out: on disk first, so a killed process keeps it.
            self.durable(durable.add, request)
        if queue is not None and queue.submit(request):
            return
        if self.apply(request):
            self.maybe_replay()
        else:
            if durable is not None:
                self.durable(durable.add, request)
                self.durable(durable.sync)
            self.journal.append(request)

    def durable(self, operation: Callable[..., None], *args: object) -> None:
        """A journal-file operation that must never fail the settlement it protects (a full disk)."""
        try:
            operation(*args)
        except OSError as exc:
            self.file_errors += 1
            log.error("could not write the settlement journal file: %s", exc)

    def apply(self, request: SettleRequest) -> bool:
        """Send one settlement; False (logged, counted) when the store could not take it."""
        try:
            outcomes = self.store.settle(
                request.reservation_id,
                request.spends,
                now_ms=self._now_ms(),
                charge=request.charge,
                tallies=request.tallies,
                track=request.track,
            )
        except StoreError as exc:
            self.store_errors += 1
            log.warning(
                "could not settle reservation %s (%s); journalled for replay", request.reservation_id, exc
            )
            return False
        if self.file is not None:
            self.durable(self.file.done, (request,))
        self._on_applied(request, outcomes)
        return True

    def apply_batch(self, requests: list[SettleRequest]) -> None:
        """Send queued settlements in one batch (the settle thread, or a flush). Never raises."""
        durable = self.file
        if durable is not None:
            self.durable(durable.sync)  # the batch's records reach the disk before it goes out
        try:
            results = self.store.settle_many(requests, now_ms=self._now_ms())
        except StoreError as exc:
            results = [exc] * len(requests)
        except Exception:
            # Not an outage but a fault in the store: settle one by one so one bad settlement cannot sink
            # the rest; what still fails is logged with its reservation id and amount.
            log.exception("batched settlement failed; settling %d entries one by one", len(requests))
            for request in requests:
                try:
                    if not self.apply(request):
                        self.journal.append(request)
                except Exception:
                    log.exception(
                        "settling reservation %s (%d nano-USD) failed",
                        request.reservation_id,
                        request.cost_nanos,
                    )
            return
        if self.batch_applied(requests, results):
            self.maybe_replay()

    def batch_applied(
        self, requests: list[SettleRequest], results: list[tuple[SettleOutcome, ...] | StoreError]
    ) -> bool:
        """What the store answered to a batch: journal the settlements it did not take, hand the others'
        outcomes on. True when it took any. Never raises, does no store I/O."""
        durable = self.file
        if durable is not None:
            self.durable(
                durable.done,
                [
                    r
                    for r, result in zip(requests, results, strict=True)
                    if not isinstance(result, StoreError)
                ],
            )
        applied = False
        failures: list[StoreError] = []
        for request, result in zip(requests, results, strict=True):
            if isinstance(result, StoreError):
                if not any(result is seen for seen in failures):
                    failures.append(result)  # one failed store operation, however many entries it carried
                    self.store_errors += 1
                log.warning(
                    "could not settle reservation %s (%s); journalled for replay",
                    request.reservation_id,
                    result,
                )
                self.journal.append(request)
                continue
            applied = True
            try:
                self._on_applied(request, result)
            except Exception:
                log.exception("alerting for reservation %s failed", request.reservation_id)
        return applied

    # -- the outage journal --------------------------------------------------------------------------------

    def maybe_replay(self) -> None:
        if len(self.journal) and self._replaying.acquire(blocking=False):
            try:
                self._replay(self.replay_batch)
            finally:
                self._replaying.release()

    def replay_all(self) -> None:
        """Replay the whole journal unless a replay is under way already."""
        if len(self.journal) and self._replaying.acquire(blocking=False):
            try:
                self._replay(None)
            finally:
                self._replaying.release()

    def _replay(self, limit: int | None) -> int:
        done = 0
        while limit is None or done < limit:
            request = self.journal.peek()
            if request is None or not self.apply(request):
                break
            self.journal.pop(request)
            done += 1
        return done

    def drain(self) -> None:
        """Apply what is queued, in the calling thread."""
        for queue in self._queues():
            queue.drain()

    def flush(self) -> int:
        """Apply queued settlements and replay the whole journal now; how many the store has not taken."""
        self.drain()
        breaker = getattr(self.store, "breaker", None)
        if breaker is not None and len(self.journal):
            breaker.try_now()  # an open circuit would refuse the replay without asking the store
        with self._replaying:
            self._replay(None)
        return len(self.journal) + self.pending

    @property
    def pending(self) -> int:
        return sum(len(queue) for queue in self._queues())

    def close_queue(self) -> None:
        for queue in self._queues():
            queue.close()

    def close_file(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError as exc:
                log.error("could not close the settlement journal file: %s", exc)
