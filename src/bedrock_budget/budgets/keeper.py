"""The hold keeper: a process's holds live as long as its calls, and no longer.

A reservation's hold expires ``reservation_ttl`` seconds after it was made, so that a process killed in the
middle of a call gives its capacity back. A call may well outlast that TTL (long generations, extended
thinking, throttled retries inside one boto3 call), and a hold that expires under a call still running lets
other callers into capacity the call is about to spend. So every process keeps the holds of its calls in
flight alive: one daemon thread per ledger (started with the first hold it tracks, gone when there is
nothing left to renew) moves the deadline of every hold older than a renewal period to ``now + TTL``, in
ONE store operation per period (one per slot on a Redis Cluster), a quarter of the TTL apart. Then:

- a call that runs for hours keeps its hold; a call that ends stops being renewed at once (settling or
  releasing it untracks it, an O(1) dictionary operation on the caller's thread);
- a killed process renews nothing, so its holds expire at most one TTL after their last renewal and the
  store handles them as it always did (``Budget.on_expired_hold``);
- a renewal the store cannot take (an outage) is retried at the next period. When the store stays
  unreachable for longer than the TTL the holds may expire in it; the call's settlement then applies as a
  late one (its actual spend is charged once) or goes to the outage journal, as every settlement during an
  outage does;
- renewal is bounded: a hold is renewed for at most ``max_call_seconds`` (default 3600 s, the longest a
  Bedrock inference request can take; AWS tells boto3 users to raise ``read_timeout`` to 3600 s for it).
  Past that the call is *overdue*: a metered stream the caller keeps but never reads or closes is settled
  at its reserved worst case (recorded as partial and estimated), which releases its hold; any other
  overdue hold is simply no longer renewed and expires a TTL later;
- a reservation object nobody references any more can never be settled, so its hold is not renewed
  either: it expires a TTL later, like a killed process's.

Capacity leases (``budgets.leases``) are renewed the same way while they are open, for at most
``lease_seconds + max_call_seconds``.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Final

from bedrock_budget.errors import StoreError
from bedrock_budget.stores.base import CounterRef, Renewal, Store

log = logging.getLogger("bedrock_budget.keeper")

DEFAULT_MAX_CALL_SECONDS: Final = 3600.0
#: Renewals per TTL: a hold is renewed at least every 3/8 of the TTL (see ``HoldKeeper.tick``), so it keeps
#: more than half its TTL in hand against a slow store or a busy interpreter.
_PERIODS_PER_TTL: Final = 4


@dataclass(eq=False, slots=True)
class _Tracked:
    reservation_id: str
    refs: tuple[CounterRef, ...]
    renewed_at: float
    #: After this (clock seconds) the hold is overdue: no more renewal.
    until: float
    #: The owner the hold belongs to, weakly: once nobody can settle it, renewing it would leak capacity.
    owner: weakref.ref[object] | None
    overdue: Callable[[], None] | None = None


class HoldKeeper:
    """Renews a ledger's live holds in the store; see the module docstring."""

    def __init__(
        self, store: Store, *, ttl: float, max_call_seconds: float, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.max_call_seconds = max_call_seconds
        self.period = ttl / _PERIODS_PER_TTL
        self.clock = clock
        #: Store operations that renewed holds, and those that failed (export them as counters).
        self.renewals = 0
        self.failures = 0
        #: Holds given up on because their call outlived ``max_call_seconds``.
        self.overdue = 0
        self._disabled = False
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._tracked: dict[Hashable, _Tracked] = {}
        #: What renews the holds (a thread here; a loop task for the async ledger), None when idle.
        self._thread: object | None = None
        self._stop = threading.Event()
        # A ledger dropped without close(): its thread leaves now, not at its next wake-up.
        weakref.finalize(self, self._stop.set)

    def after_fork(self) -> None:
        """In a forked child: the parent's holds are the parent's to renew."""
        self._reset()

    def __len__(self) -> int:
        return len(self._tracked)

    # -- the caller's side: O(1) each -------------------------------------------------------------------

    def track(
        self,
        key: Hashable,
        reservation_id: str,
        refs: tuple[CounterRef, ...],
        now: float,
        *,
        owner: object | None = None,
        lifetime: float | None = None,
    ) -> None:
        """Keep a hold alive until :meth:`forget` (or until it is overdue, or ``owner`` is collected)."""
        tracked = _Tracked(
            reservation_id,
            refs,
            now,
            now + (self.max_call_seconds if lifetime is None else lifetime),
            None if owner is None else weakref.ref(owner),
        )
        with self._lock:
            self._tracked[key] = tracked
            if self._thread is None and not self._disabled:
                self._start()

    def on_overdue(self, key: Hashable, callback: Callable[[], None]) -> None:
        """Run ``callback`` (on the keeper's thread) instead of just letting the hold lapse when it is
        overdue, e.g. to settle a stream nobody reads."""
        tracked = self._tracked.get(key)
        if tracked is not None:
            tracked.overdue = callback

    def forget(self, key: Hashable) -> None:
        self._tracked.pop(key, None)

    # -- the keeper's side ------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> int:
        """Renew every hold due for renewal in one store operation and give up on overdue ones; returns
        how many holds were renewed. Never raises."""
        if now is None:
            now = self.clock()
        due, overdue = self._collect(now)
        renewed = self._renew(due, now) if due else 0
        self._run_overdue(overdue)
        return renewed

    def _collect(self, now: float) -> tuple[list[_Tracked], list[Callable[[], None]]]:
        """The holds due for renewal, and the callbacks of the calls that are overdue (untracked now)."""
        due: list[_Tracked] = []
        overdue: list[Callable[[], None]] = []
        # Half a period of slack: a hold renewed just after the last tick is renewed at the next but one,
        # at most 1.5 periods (3/8 TTL) after its last renewal.
        threshold = now - self.period / 2
        with self._lock:
            for key, tracked in list(self._tracked.items()):
                owner = tracked.owner
                if owner is not None and owner() is None:
                    del self._tracked[key]
                elif now >= tracked.until:
                    del self._tracked[key]
                    self.overdue += 1
                    if tracked.overdue is not None:
                        overdue.append(tracked.overdue)
                    else:
                        log.warning(
                            "reservation %s has been held for over %.0f s; no longer renewing it, so it "
                            "expires within %.0f s",
                            tracked.reservation_id,
                            self.max_call_seconds,
                            self.ttl,
                        )
                elif tracked.renewed_at <= threshold:
                    due.append(tracked)
        return due, overdue

    @staticmethod
    def _run_overdue(overdue: Sequence[Callable[[], None]]) -> None:
        for callback in overdue:
            try:
                callback()
            except Exception:
                log.exception("settling an overdue call failed")

    def _renewals(self, due: Sequence[_Tracked]) -> list[Renewal]:
        """What renewing ``due`` asks of the store (nothing: calls admitted from a lease, whose lease is
        what holds and is tracked itself, or a store that cannot renew)."""
        if self._disabled:
            return []
        return [Renewal(t.reservation_id, ref) for t in due for ref in t.refs]

    def _renew(self, due: Sequence[_Tracked], now: float) -> int:
        renewals = self._renewals(due)
        if not renewals:
            return 0
        now_ms = int(now * 1000)
        try:
            live = self.store.renew(renewals, now_ms=now_ms, deadline_ms=now_ms + int(self.ttl * 1000))
        except Exception as exc:
            self._renew_failed(exc, due)
            return 0
        return self._renewed(due, live, now)

    def _renew_failed(self, exc: Exception, due: Sequence[_Tracked]) -> None:
        if isinstance(exc, NotImplementedError):
            self._disabled = True
            log.warning(
                "budget store %s cannot renew holds: calls longer than reservation_ttl (%.0f s) lose theirs",
                self.store.name,
                self.ttl,
            )
            return
        self.failures += 1
        if isinstance(exc, StoreError):
            log.warning("could not renew %d holds (%s); retrying in %.1f s", len(due), exc, self.period)
        else:
            log.error("renewing %d holds failed; retrying in %.1f s", len(due), self.period, exc_info=exc)

    def _renewed(self, due: Sequence[_Tracked], live: Sequence[bool], now: float) -> int:
        self.renewals += 1
        for tracked in due:
            tracked.renewed_at = now
        return sum(live)

    def _start(self) -> None:
        # Called with the lock held.
        thread = threading.Thread(
            target=_keep, args=(weakref.ref(self), self._stop), name="bedrock-budget-holds", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:
            return  # interpreter shutdown: nothing will be renewed, holds expire after their TTL
        self._thread = thread

    def stop(self) -> None:
        """Stop renewing (the ledger is closing): holds still held expire after their TTL."""
        self._stop.set()
        with self._lock:
            self._disabled = True  # no new thread either


def _keep(keeper_ref: weakref.ref[HoldKeeper], stop: threading.Event) -> None:
    while True:
        keeper = keeper_ref()
        if keeper is None:
            return
        period = keeper.period
        del keeper
        if stop.wait(period):
            return
        keeper = keeper_ref()
        if keeper is None:
            return
        try:
            keeper.tick()
        except Exception:
            log.exception("renewing holds failed")
        with keeper._lock:
            if not keeper._tracked:
                # Idle: the next hold tracked starts a new thread.
                keeper._thread = None
                return
        del keeper
