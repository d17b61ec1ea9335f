"""A bounded local journal of spend the store could not take, and the queue of settlements not yet sent.

When a settlement fails (store down, timeout), the settlement is kept here and replayed once the store
answers again. Replays are idempotent in the store (a settled reservation id is never charged twice), so
an entry whose first attempt did reach the store before the connection broke is harmless. When the
journal is full, new entries are dropped: loudly, with an error log line, a counter and the dropped
amount, never silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from bedrock_budget.stores.base import SettleRequest

log = logging.getLogger("bedrock_budget.journal")


class Journal:
    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 0:
            raise ValueError("journal capacity must not be negative")
        self.capacity = capacity
        self._entries: deque[SettleRequest] = deque()
        self._lock = threading.Lock()
        self.dropped = 0
        self.dropped_nanos = 0
        self.replayed = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def full(self) -> bool:
        return len(self._entries) >= self.capacity

    def append(self, entry: SettleRequest) -> bool:
        with self._lock:
            if len(self._entries) < self.capacity:
                self._entries.append(entry)
                return True
            track = entry.track
            lost = entry.cost_nanos
            self.dropped += 1
            self.dropped_nanos += lost
        log.error(
            "budget store unavailable and the spend journal is full (%d entries): spend of reservation %s "
            "(%d nano-USD, %d calls) could not be recorded; %d settlements lost so far",
            self.capacity,
            entry.reservation_id,
            lost,
            1 if track is None else track.calls,
            self.dropped,
        )
        return False

    def peek(self) -> SettleRequest | None:
        with self._lock:
            return self._entries[0] if self._entries else None

    def pop(self, entry: SettleRequest) -> None:
        with self._lock:
            if self._entries and self._entries[0] is entry:
                self._entries.popleft()
                self.replayed += 1


class SettleQueue:
    """Settlements accepted but not yet applied (the ledger's ``settle_mode="background"``).

    One daemon thread takes up to ``batch`` entries at a time and hands them to ``apply``, which must not
    raise; the thread is started by the first entry and exits after ``idle`` seconds without work, so an
    unused ledger holds no thread. Woken by an entry, it waits up to ``linger`` seconds for a fuller batch:
    fewer, larger batches cost less CPU (and less GIL time taken from the callers) per settlement, and
    keep the holds they replace only that much longer. :meth:`submit` refuses (returns False) when the
    queue is full or closed: the caller then settles synchronously, so a slow store slows callers down
    instead of losing spend.
    """

    def __init__(
        self,
        apply: Callable[[list[SettleRequest]], None],
        *,
        capacity: int,
        batch: int,
        linger: float = 0.005,
        idle: float = 5.0,
    ) -> None:
        if capacity < 1 or batch < 1:
            raise ValueError("settle queue capacity and batch must be at least 1")
        self.capacity = capacity
        self.batch = batch
        self.linger = linger
        self.idle = idle
        self._apply = apply
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._entries: deque[SettleRequest] = deque()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._waiting = False
        self._closed = False

    def after_fork(self) -> None:
        """In a forked child: forget the parent's entries (the parent applies them) and its thread."""
        closed = self._closed
        self._reset()
        self._closed = closed

    def __len__(self) -> int:
        return len(self._entries) + self._in_flight

    def submit(self, entry: SettleRequest) -> bool:
        with self._cond:
            if self._closed or len(self._entries) >= self.capacity:
                return False
            if self._thread is None:
                worker = threading.Thread(target=self._run, name="bedrock-budget-settle", daemon=True)
                try:
                    worker.start()
                except RuntimeError:
                    # No new threads during interpreter shutdown: the caller settles synchronously.
                    return False
                self._thread = worker
            elif self._waiting or len(self._entries) + 1 >= self.batch:
                self._cond.notify()
            self._entries.append(entry)
        return True

    def _take(self) -> list[SettleRequest]:
        # Called with the lock held; entries in flight still count as pending until apply returns.
        entries = self._entries
        batch = [entries.popleft() for _ in range(min(self.batch, len(entries)))]
        self._in_flight += len(batch)
        return batch

    def _apply_batch(self, batch: list[SettleRequest]) -> None:
        try:
            self._apply(batch)
        except Exception:
            log.exception("applying %d queued settlements failed", len(batch))
        finally:
            with self._cond:
                self._in_flight -= len(batch)
                self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._entries and not self._closed:
                    self._waiting = True
                    self._cond.wait(self.idle)
                    self._waiting = False
                if not self._entries:
                    # Idle or closed: a later submit starts a new worker.
                    self._thread = None
                    return
                if self.linger > 0 and len(self._entries) < self.batch and not self._closed:
                    self._cond.wait(self.linger)
                batch = self._take()
            if batch:
                self._apply_batch(batch)

    def drain(self, timeout: float | None = None) -> bool:
        """Apply everything queued, in the calling thread, and wait for batches the worker has in flight.
        True when nothing is pending any more."""
        deadline = None if timeout is None else time.monotonic() + timeout
        worker = threading.current_thread() is self._thread
        while True:
            with self._cond:
                if self._entries:
                    batch = self._take()
                elif self._in_flight and not worker:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                    continue
                else:
                    return not self._entries and not self._in_flight
            self._apply_batch(batch)

    def close(self, timeout: float | None = None) -> bool:
        """Accept nothing more, apply what is pending and let the worker exit."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        drained = self.drain(timeout)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return drained
