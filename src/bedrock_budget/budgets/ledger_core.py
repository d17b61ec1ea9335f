"""The ledger without I/O: what a reservation holds, what the store's answer means, what a settlement or a
release sends. The sync :class:`~bedrock_budget.budgets.ledger.Ledger` and the event loop's
:class:`~bedrock_budget.budgets.async_ledger.AsyncLedger` are drivers around it: each makes the store
call its own way between :meth:`LedgerCore._plan` and :meth:`LedgerCore._interpret`, so both enforce the
same budgets by the same rules (matching, refusals, downgrades, clamps, unattributed calls, warnings,
alerts, overruns, spend tracking).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from bedrock_budget.alerts.model import Alert
from bedrock_budget.alerts.sinks import AlertSink
from bedrock_budget.budgets.alerting import AlertDispatcher
from bedrock_budget.budgets.compiled import CompiledBudgets
from bedrock_budget.budgets.keeper import HoldKeeper
from bedrock_budget.budgets.leases import Lease, LeaseBookCore
from bedrock_budget.budgets.model import Budget
from bedrock_budget.budgets.outcomes import Reservation, refusal_error, refusals_of
from bedrock_budget.budgets.overruns import OverrunTally
from bedrock_budget.budgets.settings import LedgerSettings, OutagePolicy
from bedrock_budget.budgets.settler import Settler
from bedrock_budget.budgets.unattributed import UnattributedTally
from bedrock_budget.budgets.units import check_amount, check_token_counts
from bedrock_budget.errors import ConfigurationError, StoreError
from bedrock_budget.stores.base import (
    CounterRef,
    Hold,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
    Store,
    call_tallies,
)
from bedrock_budget.stores.tracking import TrackEntry, Tracking, TrackSums

if TYPE_CHECKING:
    from bedrock_budget.budgets.live import DefinitionsFollower

log = logging.getLogger("bedrock_budget.ledger")


class ReservationIds:
    """Reservation ids: 96 random bits drawn once per process (and again in a forked child), then a counter.

    The store settles each id once, so two calls must never share one: two of a billion processes draw the
    same 96 bits with odds of about 10^-11. No system call per id: ``os.urandom`` releases the GIL, and each
    call to it handed the settle thread (or any other) the interpreter in the middle of the caller's reserve.
    """

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(12).hex()
        self._counter = itertools.count()
        self._lock = threading.Lock()  # a fresh one in a child: another thread may have held it at the fork

    def __call__(self) -> str:
        with self._lock:
            number = next(self._counter)
        return f"{self._prefix}{number:x}"


_reservation_id = ReservationIds()


BookT = TypeVar("BookT", bound=LeaseBookCore)


class LedgerCore:
    """Mixed into both ledgers, which set the parts below."""

    tracking: Tracking | None
    unattributed: UnattributedTally
    overruns: OverrunTally
    reservation_ttl: float
    lease_seconds: float
    max_call_seconds: float
    on_store_error: OutagePolicy
    _budgets: CompiledBudgets
    _clock: Callable[[], float]
    _alerts: AlertDispatcher
    _keeper: HoldKeeper
    _leases: LeaseBookCore | None
    _settler: Settler
    _follower: DefinitionsFollower | None

    # -- configuration -------------------------------------------------------------------------------------

    @property
    def budgets(self) -> tuple[Budget, ...]:
        return self._budgets.budgets

    def set_budgets(self, budgets: Iterable[Budget]) -> None:
        """Replace the budgets. Spend already recorded is kept for every budget whose name, scope and window
        are unchanged (store keys do not depend on limits, actions or thresholds)."""
        self._budgets = CompiledBudgets(budgets, self.unattributed)
        if self._leases is not None:
            # Leases were sized and granted under the old limits.
            self._leases.retire()

    def _follow(self, store: Store, refresh_seconds: float) -> DefinitionsFollower:
        """Follow the budgets published in ``store`` (read from a thread of its own: ``budgets.live``)."""
        from bedrock_budget.budgets.live import DefinitionsFollower

        if self._follower is not None:
            raise ConfigurationError("this ledger already follows the store's budget definitions")
        self._follower = DefinitionsFollower(store, self.set_budgets, refresh_seconds=refresh_seconds)
        self._follower.start()
        return self._follower

    @property
    def definitions_version(self) -> int | None:
        """The published version enforced (0: none yet); ``None`` when not following the store."""
        return self._follower.version if self._follower is not None else None

    def add_alert_sink(self, sink: AlertSink | Callable[[Alert], object]) -> None:
        self._alerts.add(sink)

    def matching(
        self, attribution: Mapping[str, str], model_id: str, model_family: str | None
    ) -> list[tuple[Budget, tuple[tuple[str, str], ...]]]:
        """Every budget that applies to a call, with the concrete scope values it is counted under."""
        return self._budgets.matching(attribution, model_id, model_family)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- reserve: plan → store → interpret -----------------------------------------------------------------

    def _plan(
        self,
        attribution: Mapping[str, str],
        model_id: str,
        model_family: str | None,
        cost_nanos: int,
        tokens: Mapping[str, int],
    ) -> tuple[Reservation, list[Hold]]:
        """The reservation of a call and what it holds in the store (nothing: no budget applies). Raises
        refusals that need no store: unattributed calls, per-call caps."""
        check_amount(cost_nanos, "cost_nanos")
        check_token_counts(tokens)
        now = self._clock()
        found = self._budgets.lines(attribution, model_id, model_family, now, cost_nanos, tokens)
        reservation = Reservation(
            id=_reservation_id(),
            model_id=model_id,
            model_family=model_family,
            cost_nanos=cost_nanos,
            tokens=MappingProxyType(dict(tokens)),
            lines=tuple(line for _, line in found),
            created_at=now,
            deadline=now + self.reservation_ttl,
            attribution=attribution,
        )
        return reservation, [compiled.hold(line) for compiled, line in found] if found else []

    def _interpret(self, reservation: Reservation, result: ReserveResult) -> Reservation:
        """The store's answer to a reservation: raise its refusal, or note its warnings and keep its hold
        alive while the call runs."""
        lines = reservation.lines
        rid = reservation.id
        reservation.epochs = tuple(check.epoch for check in result.checks)
        if self._leases is not None:
            self._leases.seen(lines, result.checks, granted=result.granted)
        if not result.granted:
            try:
                self._alerts.refused(lines, result.checks)
            except Exception:  # the refusal must reach the caller whatever an alert does
                log.exception("alerting for refused reservation %s failed", rid)
        refusals = [
            refusal
            for line, check in zip(lines, result.checks, strict=True)
            if check.refused
            for refusal in refusals_of(line, check)
        ]
        if not result.granted:
            raise refusal_error(reservation.model_id, [r for r in refusals if r.action != "warn"])
        if refusals:
            reservation.warnings = tuple(refusals)
            for refusal in refusals:
                log.info(
                    "shadow budget %s would have refused the call: %s", refusal.budget.name, refusal.reason
                )
        ref_list = tuple([line.ref for line in lines])
        self._keeper.track(rid, rid, ref_list, reservation.created_at, owner=reservation)
        return reservation

    def _reserve_offline(self, reservation: Reservation, exc: StoreError) -> Reservation:
        self._settler.outage(exc, self.on_store_error)  # raises unless the call may proceed
        reservation.offline = True
        return reservation

    # -- capacity leases (``budgets.leases``): what the book hears of from either driver -------------------

    def _lease_book(
        self, book: Callable[..., BookT], store: object, settings: LedgerSettings, clock: Callable[[], float]
    ) -> BookT | None:
        """The driver's lease book (``book``: its class, taking leases in ``store``), or None without
        leases."""
        if settings.lease_fraction is None:
            return None
        return book(
            settings.lease_fraction,
            settings.lease_seconds,
            self._close_leases,
            clock,
            store=store,
            hold_ttl=self.reservation_ttl,
            new_id=_reservation_id,
        )

    def _track_lease(self, lease: Lease, now: float) -> None:
        # The keeper renews a lease's hold while it is open, so it outlives every call it admitted.
        lifetime = self.lease_seconds + self.max_call_seconds
        self._keeper.track(lease, lease.id, (lease.ref,), now, lifetime=lifetime)

    def _close_leases(self, leases: list[Lease], sums: list[TrackSums]) -> None:
        """Settle the leases that closed, and send the spend-ledger sums of those that retired: each sum
        under an id of its own, taken once here and kept through the queue, the journal and replays, so it
        is tracked exactly once."""
        budgets = self._budgets
        requests: list[SettleRequest] = []
        for lease in leases:
            self._keeper.forget(lease)
            requests.append(lease.settlement(budgets.current_marks(lease.budget, lease.ref.scope)))
        for summed in sums:
            requests.extend(SettleRequest(_reservation_id(), (), track=entry) for entry in summed.entries())
        for request in requests:
            try:
                self._settler.submit(request)
            except Exception:
                # Not an outage (the settler journals those) but a fault: this runs on the caller's thread
                # or the lease keeper's, and neither may lose the leases' spend to it.
                log.exception("settling %s for a capacity lease failed; journalled", request.reservation_id)
                self._settler.journal.append(request)

    # -- settle and release --------------------------------------------------------------------------------

    def _settlement(
        self, reservation: Reservation, cost_nanos: int, tokens: Mapping[str, int]
    ) -> SettleRequest | None:
        """What settling the call sends to the store (``None``: nothing; it was settled or released before,
        or holds nothing and is not tracked)."""
        check_amount(cost_nanos, "cost_nanos")
        check_token_counts(tokens)
        if not reservation._finish("settled"):
            return None
        if not reservation.lines:
            track = self._track(reservation, cost_nanos, tokens)
            return None if track is None else SettleRequest(reservation.id, (), track=track)
        self._keeper.forget(reservation.id)
        if cost_nanos > reservation.cost_nanos or tokens:
            self.overruns.note(reservation, cost_nanos, tokens)
        if reservation.leases:
            assert self._leases is not None
            weighted = [line.budget.weigh(tokens) for line in reservation.lines]
            # A lease settles its calls' spend when it closes, and sends their spend-ledger sums when it
            # retires; a call settled after its lease retired is tracked by itself.
            tracking = self.tracking
            at = 0.0 if tracking is None else self._clock()
            summed = self._leases.settle(
                reservation.leases,
                reservation.lines,
                cost_nanos,
                weighted,
                reservation.model_id,
                tokens,
                tracking,
                reservation.attribution,
                at,
            )
            if tracking is None or summed:
                return None
            track = tracking.entry(reservation.attribution, reservation.model_id, cost_nanos, tokens, at)
            return SettleRequest(reservation.id, (), track=track)
        budgets = self._budgets
        epochs = reservation.epochs or (None,) * len(reservation.lines)
        spends = tuple(
            line.spend(cost_nanos, tokens, budgets.current_marks(line.budget, line.ref.scope), epoch)
            for line, epoch in zip(reservation.lines, epochs, strict=True)
        )
        tallies = call_tallies(reservation.model_id, cost_nanos, tokens)
        track = self._track(reservation, cost_nanos, tokens)
        return SettleRequest(reservation.id, spends, tallies, charge=reservation.offline, track=track)

    def _track(
        self, reservation: Reservation, cost_nanos: int, tokens: Mapping[str, int]
    ) -> TrackEntry | None:
        """The call's spend-ledger entry, bucketed at this moment."""
        if self.tracking is None:
            return None
        return self.tracking.entry(
            reservation.attribution, reservation.model_id, cost_nanos, tokens, self._clock()
        )

    def _releasing(self, reservation: Reservation) -> list[CounterRef]:
        """The counters whose hold releasing the call drops in the store (none: nothing to send)."""
        if not reservation._finish("released") or not reservation.lines or reservation.offline:
            return []
        self._keeper.forget(reservation.id)
        if reservation.leases:
            assert self._leases is not None
            self._leases.release(reservation.leases, reservation.lines)
            return []
        return [line.ref for line in reservation.lines]

    def _release_failed(self, reservation: Reservation, exc: StoreError) -> None:
        self._settler.store_errors += 1
        log.warning(
            "could not release reservation %s (%s); its hold expires at its deadline", reservation.id, exc
        )

    def on_overdue(self, reservation: Reservation, callback: Callable[[], None]) -> None:
        """Settle a call that outlives ``max_call_seconds`` with ``callback`` (run where the hold keeper
        runs; it should settle or release ``reservation``) instead of letting its hold lapse. The wrapper
        uses it to settle streams their caller never reads or closes (see ``budgets.keeper``)."""
        if reservation.leases and reservation.state == "held":
            # A call admitted from a lease holds nothing of its own to renew (its leases are renewed), so
            # it is tracked only once something is to happen when it is overdue: off the leased hot path.
            self._keeper.track(reservation.id, reservation.id, (), reservation.created_at, owner=reservation)
        self._keeper.on_overdue(reservation.id, callback)

    def _settled(self, request: SettleRequest, outcomes: Sequence[SettleOutcome]) -> None:
        self._alerts.settled(request, outcomes, self._budgets)
