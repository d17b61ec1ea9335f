"""The ledger: budgets + store + outage policy + alert sinks, and the three calls the wrapper makes.

Call flow (one reservation per Bedrock call)::

    reservation = ledger.reserve(attribution, model_id, model_family, cost_nanos, tokens)  # worst case
    try:
        response = call_bedrock()
    except BedrockError:
        ledger.release(reservation)        # failed before inference: nothing billed
        raise
    ledger.settle(reservation, actual_cost_nanos, actual_tokens)   # exactly once, e.g. when a stream ends

``reserve`` finds every budget that applies (:meth:`Budget.match`) and holds the worst case against all of
them in ONE store operation, or against none:

- a refusing ``block`` budget raises :class:`~bedrock_budget.errors.BudgetBlockedError` (a
  ``BudgetExceededError``) describing the first refusing budget; ``.refusals`` lists all of them.
- a refusing ``downgrade`` budget raises :class:`~bedrock_budget.errors.DowngradeRequiredError`
  (also a ``BudgetExceededError``) with ``.downgrade_to``: re-estimate the same request for that model and
  call ``reserve`` again with it. It takes precedence over ``block`` refusals because the cheaper model may
  fit them too; if the model already is the downgrade target, the budget blocks instead. The wrapper should
  allow a bounded number of downgrades per call (one or two) to rule out cycles.
- when every refusing budget is a ``clamp`` budget, :class:`~bedrock_budget.errors.ClampRequiredError`.
- ``warn`` (shadow) budgets never refuse: they are checked and held like the others, their spend is
  recorded, and a would-be refusal is reported in ``reservation.warnings``.
- a budget with ``on_unattributed="refuse"`` raises :class:`~bedrock_budget.errors.UnattributedCallError`
  for a call lacking one of its ``"*"`` keys (see :mod:`bedrock_budget.budgets.unattributed`).

Nothing is held when ``reserve`` raises. Tokens are given by type (input, output, cache_read, cache_write)
and weighted per budget. ``settle`` may be given more than was reserved; the actual amount is recorded.

Outage policy (``on_store_error``): ``"deny"`` raises :class:`~bedrock_budget.errors.StoreUnavailableError`
from ``reserve``; ``"allow"`` returns an *offline* reservation and lets the call proceed (until the outage
journal is full; see :mod:`bedrock_budget.budgets.settler`). ``release`` never raises for store errors: an
unreleased hold expires at its deadline.

Hold lifetime: ``reservation_ttl``, renewed while the call is in flight (:mod:`.keeper`).

Threshold alerts are decided by the store during ``settle`` (once per budget, scope values, window and
threshold across all processes) and handed to the sinks. A ``block`` or ``downgrade`` budget's 100% threshold
is decided by its first refusal instead (``reserve``; :attr:`Alert.refused`), since such a budget refuses
the call whose worst case would cross the limit and its spend stops short of it.

Settlement (``settle_mode``: ``"sync"`` by default, or ``"background"``: queued and sent in batches) and
the outage journal: :mod:`bedrock_budget.budgets.settler` has the rules (exactly once, never overshooting,
batching, backpressure, shutdown, visibility).

Capacity leases (``lease_fraction``, off by default): see :mod:`bedrock_budget.budgets.leases`. Budgets
published in the store, followed live (``follow_published``): see :mod:`bedrock_budget.budgets.live`.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from bedrock_budget.alerts.model import Alert
from bedrock_budget.alerts.sinks import AlertSink
from bedrock_budget.budgets.alerting import AlertDispatcher
from bedrock_budget.budgets.compiled import CompiledBudgets
from bedrock_budget.budgets.counters import LedgerCounters
from bedrock_budget.budgets.durable import JournalFile
from bedrock_budget.budgets.keeper import DEFAULT_MAX_CALL_SECONDS, HoldKeeper
from bedrock_budget.budgets.ledger_core import LedgerCore
from bedrock_budget.budgets.model import Budget
from bedrock_budget.budgets.outcomes import Reservation
from bedrock_budget.budgets.overruns import OverrunTally
from bedrock_budget.budgets.reads import LedgerReads
from bedrock_budget.budgets.settings import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_RESERVATION_TTL,
    LedgerSettings,
    OutagePolicy,
    SettleMode,
)
from bedrock_budget.budgets.settler import Settler
from bedrock_budget.budgets.sync_leases import LeaseBook
from bedrock_budget.budgets.unattributed import UnattributedTally
from bedrock_budget.errors import StoreError
from bedrock_budget.stores import from_uri
from bedrock_budget.stores.base import SettleRequest, Store
from bedrock_budget.stores.tracking import Tracking

if TYPE_CHECKING:
    from bedrock_budget.budgets.live import DefinitionsFollower

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_RESERVATION_TTL",
    "Ledger",
    "LedgerSettings",
    "OutagePolicy",
    "SettleMode",
]

log = logging.getLogger("bedrock_budget.ledger")

_LIVE: weakref.WeakSet[Ledger] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    # Queued settlements, and spend journalled during an outage, get one last chance to reach the store at
    # a clean shutdown. Daemon threads still run while atexit handlers do, so a batch in flight completes.
    for ledger in list(_LIVE):
        if ledger.journal_depth or ledger.pending_settlements or ledger.leases_live:
            try:
                ledger.flush()
            except Exception:
                log.exception("flushing settlements at exit failed")


def _after_fork_in_child() -> None:
    # The parent's queue and worker thread stay the parent's; the child starts with an empty queue.
    for ledger in list(_LIVE):
        ledger._settler.after_fork()
        if ledger._leases is not None:
            ledger._leases.after_fork()
        ledger._keeper.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Ledger(LedgerCore, LedgerReads, LedgerCounters):
    """Budgets enforced against a store. Thread-safe; share one per process (or per wrapped client)."""

    _leases: LeaseBook | None

    def __init__(
        self,
        store: Store | str = "memory://",
        budgets: Iterable[Budget] = (),
        *,
        on_store_error: OutagePolicy = "deny",
        alert_sinks: Iterable[AlertSink | Callable[[Alert], object]] = (),
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
        journal_size: int = 10_000,
        replay_batch: int = 100,
        clock: Callable[[], float] = time.time,
        settle_mode: SettleMode = "sync",
        settle_queue_size: int = 10_000,
        settle_batch: int = 64,
        settle_linger: float = 0.005,
        lease_fraction: float | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_call_seconds: float = DEFAULT_MAX_CALL_SECONDS,
        journal_path: str | os.PathLike[str] | None = None,
        track: bool | Iterable[str | tuple[str, ...]] | Tracking | None = True,
    ) -> None:
        #: What every settled call adds to the spend ledger (``stores.tracking``); None: nothing.
        self.tracking = Tracking.of(track)
        settings = LedgerSettings(
            on_store_error=on_store_error,
            reservation_ttl=reservation_ttl,
            journal_size=journal_size,
            replay_batch=replay_batch,
            settle_mode=settle_mode,
            settle_queue_size=settle_queue_size,
            settle_batch=settle_batch,
            settle_linger=settle_linger,
            lease_fraction=lease_fraction,
            lease_seconds=lease_seconds,
            max_call_seconds=max_call_seconds,
            journal_path=journal_path,
        )
        self.settings = settings
        self._owns_store = isinstance(store, str)
        self.store: Store = from_uri(store) if isinstance(store, str) else store
        self.on_store_error: OutagePolicy = settings.on_store_error
        self.reservation_ttl = settings.reservation_ttl
        self.settle_mode: SettleMode = settings.settle_mode
        self.lease_fraction = settings.lease_fraction
        self.lease_seconds = settings.lease_seconds
        self.max_call_seconds = settings.max_call_seconds
        self._clock = clock
        self._alerts = AlertDispatcher(alert_sinks)
        self.unattributed = UnattributedTally()  #: calls lacking a "*" key, see ``budgets.unattributed``
        self._budgets = CompiledBudgets((), self.unattributed)
        #: Settled calls that cost more than their hold, per budget (see ``budgets.overruns``).
        self.overruns = OverrunTally()
        self._closed = False
        self._leases: LeaseBook | None = self._lease_book(LeaseBook, self.store, settings, clock)
        self._keeper = HoldKeeper(
            self.store, ttl=self.reservation_ttl, max_call_seconds=self.max_call_seconds, clock=clock
        )
        self.set_budgets(budgets)
        self._follower = None
        self._settler = Settler(
            self.store,
            now_ms=self._now_ms,
            on_applied=self._settled,
            journal_size=settings.journal_size,
            replay_batch=settings.replay_batch,
            background=(
                (settings.settle_queue_size, settings.settle_batch, settings.settle_linger)
                if settings.settle_mode == "background"
                else None
            ),
            file=JournalFile(journal_path) if journal_path is not None else None,
        )
        #: Synchronous settlements on a network store send their spend-ledger entries in batches apart.
        self._track_apart = self.store.batch_tracking and self._settler.queue is None
        _LIVE.add(self)
        self._settler.maybe_replay()

    # -- following budgets published in the store ----------------------------------------------------------

    def follow_published(self, refresh_seconds: float = 1.0) -> DefinitionsFollower:
        """Enforce the budgets published in the store, following their changes (``budgets.live``)."""
        return self._follow(self.store, refresh_seconds)

    # -- the hot path ---------------------------------------------------------------------------------------

    def reserve(
        self,
        attribution: Mapping[str, str],
        model_id: str,
        model_family: str | None,
        cost_nanos: int,
        tokens: Mapping[str, int],
    ) -> Reservation:
        """Hold a call's worst case against every applicable budget (see the module docstring)."""
        reservation, holds = self._plan(attribution, model_id, model_family, cost_nanos, tokens)
        if not holds:
            return reservation
        now = reservation.created_at
        if self._leases is not None and not self._closed:
            leased = self._reserve_leased(reservation, now)
            if leased is not None:
                return leased
        try:
            result = self.store.reserve(
                reservation.id, holds, now_ms=int(now * 1000), deadline_ms=int(reservation.deadline * 1000)
            )
        except StoreError as exc:
            return self._reserve_offline(reservation, exc)
        self._interpret(reservation, result)
        self._settler.maybe_replay()
        return reservation

    def _reserve_leased(self, reservation: Reservation, now: float) -> Reservation | None:
        """Admit the call against this process's leases (see ``budgets.leases``); None: the ordinary path."""
        book = self._leases
        assert book is not None
        leases = book.admit(reservation.lines, now)  # most calls: live leases admit them, nothing else
        if leases is not None:
            reservation.leases = leases
            return reservation
        try:
            leases = book.acquire(reservation.lines, now, self._track_lease)
        except StoreError as exc:
            return self._reserve_offline(reservation, exc)
        if leases is None:
            return None
        reservation.leases = leases
        return reservation

    def settle(self, reservation: Reservation, cost_nanos: int, tokens: Mapping[str, int]) -> None:
        """Record the actual cost and tokens, replacing the hold, exactly once."""
        request = self._settlement(reservation, cost_nanos, tokens)
        if request is None:
            return
        if request.track is not None and request.spends and self._track_apart:
            # Settled synchronously on a network store: the entry goes in a batch of its own (see
            # ``Store.batch_tracking``), exactly once all the same (its own dedupe, its own journal entry).
            # Under an id of its own: journals keep one entry per id, and must keep both.
            entry_id = f"{request.reservation_id}:t"
            self._settler.submit(SettleRequest(entry_id, (), track=request.track))
            request = replace(request, track=None)
        self._settler.submit(request)

    def release(self, reservation: Reservation) -> None:
        """Drop the hold of a call that failed before inference. Never raises for store errors."""
        refs = self._releasing(reservation)
        if not refs:
            return
        try:
            self.store.release(reservation.id, refs, now_ms=self._now_ms())
        except StoreError as exc:
            self._release_failed(reservation, exc)

    # -- settlement plumbing -------------------------------------------------------------------------------

    def flush(self) -> int:
        """Apply queued settlements and replay the whole journal now; returns how many settlements the
        store has not taken yet (0 when it took all)."""
        self._drain()
        return self._settler.flush()

    def _drain(self) -> None:
        if self._leases is not None:
            self._leases.retire()
        self._settler.drain()

    # -- lifecycle -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Apply queued settlements and replay the journal (best effort), drain alert sinks and close a
        store this ledger created. Settlements made after closing are applied synchronously."""
        if self._closed:
            return
        self._closed = True
        self._keeper.stop()
        if self._follower is not None:
            self._follower.stop()
        try:
            if self._leases is not None:
                self._leases.retire()
                self._leases.stop()
            self._settler.close_queue()
            remaining = self.flush()
            if remaining:
                log.error("closing with %d settlements the budget store never took", remaining)
        finally:
            self._settler.close_file()
            self._alerts.close()
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
