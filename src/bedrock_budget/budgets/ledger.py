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
- ``warn`` (shadow) budgets never refuse: they are checked and held like the others, their spend is
  recorded, and a would-be refusal is reported in ``reservation.warnings``.

Nothing is held when ``reserve`` raises. Tokens are given by type (``input``, ``output``, ``cache_read``,
``cache_write``) and weighted per budget. ``settle`` may be given more than was reserved (the estimate
was wrong); the actual amount is always recorded.

Outage policy (``on_store_error``): ``"deny"`` raises :class:`~bedrock_budget.errors.StoreUnavailableError`
from ``reserve``; ``"allow"`` returns an *offline* reservation and lets the call proceed. Either way a
settlement the store cannot take goes to a bounded local journal (:attr:`Ledger.journal_depth`) that is
replayed, oldest first, after the next successful store operation or on :meth:`Ledger.flush` / close. When
the journal is full, ``allow`` stops allowing (``reserve`` raises ``StoreUnavailableError``) and any
settlement that still cannot be kept is logged as an error and counted (:attr:`Ledger.journal_dropped`).
``release`` never raises for store errors: an unreleased hold expires at its deadline.

Hold lifetime: a hold's deadline is ``reservation_ttl`` ahead, and a daemon thread keeps moving it while
the call is in flight (one store operation per quarter TTL for every hold due), for at most
``max_call_seconds``; see :mod:`bedrock_budget.budgets.keeper`.

Threshold alerts are decided by the store during ``settle`` (once per budget, scope values, window and
threshold across all processes) and handed to the sinks. A ``block`` or ``downgrade`` budget's 100%
threshold is decided by its first refusal instead (``reserve``; :attr:`Alert.refused`), since such a
budget refuses the call whose worst case would cross the limit and its spend stops short of it.

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

Capacity leases (``lease_fraction``, off by default): the process reserves a slice of each budget it uses
and admits calls against it in memory, so most calls make no store round trip at all; each lease settles
once, for all its calls, when it closes. See :mod:`bedrock_budget.budgets.leases` for the rules and
what they cost (spend seen by other processes about ``lease_seconds`` later; some capacity briefly held
near a limit).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Final, Literal

from bedrock_budget.alerts.model import Alert
from bedrock_budget.alerts.sinks import AlertSink, as_sink
from bedrock_budget.budgets.durable import JournalFile
from bedrock_budget.budgets.journal import Journal, JournalEntry, SettleQueue
from bedrock_budget.budgets.keeper import DEFAULT_MAX_CALL_SECONDS, HoldKeeper
from bedrock_budget.budgets.leases import Lease, LeaseBook
from bedrock_budget.budgets.lines import ReservationLine
from bedrock_budget.budgets.model import WILDCARD, Budget
from bedrock_budget.budgets.outcomes import (
    BudgetStatus,
    Refusal,
    Reservation,
    alert_of,
    refusals_of,
    status_of,
)
from bedrock_budget.budgets.overruns import OverrunTally
from bedrock_budget.budgets.units import check_amount, check_token_counts
from bedrock_budget.errors import (
    BudgetBlockedError,
    ConfigurationError,
    DowngradeRequiredError,
    StoreError,
    StoreUnavailableError,
    shown,
)
from bedrock_budget.stores import from_uri
from bedrock_budget.stores.base import (
    Check,
    CounterRef,
    Hold,
    Mark,
    SettleOutcome,
    SettleRequest,
    Spend,
    Store,
)

log = logging.getLogger("bedrock_budget.ledger")

OutagePolicy = Literal["deny", "allow"]
SettleMode = Literal["sync", "background"]
DEFAULT_RESERVATION_TTL: Final = 300.0
DEFAULT_LEASE_SECONDS: Final = 1.0


_LIVE: weakref.WeakSet[Ledger] = weakref.WeakSet()
_NO_TOKENS: Final[Mapping[str, int]] = MappingProxyType({})


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
        if ledger._settler is not None:
            ledger._settler.after_fork()
        if ledger._leases is not None:
            ledger._leases.after_fork()
        ledger._keeper.after_fork()
        if ledger._file is not None:
            ledger._file.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _reservation_id() -> str:
    # 128 random bits as 32 hex digits, like uuid4().hex, for a quarter of the cost.
    return os.urandom(16).hex()


@lru_cache(maxsize=4096)
def _ref(
    budget: str, scope: tuple[tuple[str, str], ...], window: str, timezone: str, start: int, end: int | None
) -> CounterRef:
    return CounterRef(budget=budget, scope=scope, window=window, timezone=timezone, start=start, end=end)


@dataclass(frozen=True, slots=True)
class _Compiled:
    budget: Budget
    order: int
    marks: tuple[Mark, ...]
    #: Reported when the budget refuses a call (see ``stores.base``): its limit, i.e. the 100% thresholds.
    refusal_marks: tuple[Mark, ...]


def _marks(budget: Budget) -> tuple[Mark, ...]:
    marks: list[Mark] = []
    for percent in budget.thresholds:
        # ceil(limit * percent / 100): the threshold is reached exactly when spent * 100 >= limit * percent.
        if budget.limit_nanos is not None:
            marks.append(Mark("usd", percent, -(-budget.limit_nanos * percent // 100)))
        if budget.limit_milli is not None:
            marks.append(Mark("tokens", percent, -(-budget.limit_milli * percent // 100)))
    return tuple(marks)


class Ledger:
    """Budgets enforced against a store. Thread-safe; share one per process (or per wrapped client)."""

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
    ) -> None:
        if on_store_error not in ("deny", "allow"):
            raise ConfigurationError(f"on_store_error must be 'deny' or 'allow', not {on_store_error!r}")
        if not reservation_ttl > 0:
            raise ConfigurationError(f"reservation_ttl must be positive, not {shown(reservation_ttl)}")
        if settle_mode not in ("sync", "background"):
            raise ConfigurationError(f"settle_mode must be 'sync' or 'background', not {settle_mode!r}")
        if settle_queue_size < 1 or settle_batch < 1:
            raise ConfigurationError("settle_queue_size and settle_batch must be at least 1")
        if not settle_linger >= 0:
            raise ConfigurationError(f"settle_linger must not be negative, not {shown(settle_linger)}")
        if lease_fraction is not None and not 0 < lease_fraction <= 1:
            raise ConfigurationError(f"lease_fraction must be in (0, 1], not {shown(lease_fraction)}")
        if not lease_seconds > 0:
            raise ConfigurationError(f"lease_seconds must be positive, not {shown(lease_seconds)}")
        if not max_call_seconds > 0:
            raise ConfigurationError(f"max_call_seconds must be positive, not {shown(max_call_seconds)}")
        self._owns_store = isinstance(store, str)
        self.store: Store = from_uri(store) if isinstance(store, str) else store
        self.on_store_error: OutagePolicy = on_store_error
        self.reservation_ttl = float(reservation_ttl)
        self.replay_batch = replay_batch
        self._clock = clock
        self._sinks: tuple[AlertSink, ...] = tuple(as_sink(s) for s in alert_sinks)
        self._journal = Journal(journal_size)
        self._replaying = threading.Lock()
        self._compiled: tuple[_Compiled, ...] = ()
        self._by_name: dict[str, _Compiled] = {}
        self.store_errors = 0
        #: Writes to the journal file that failed (export it as a counter; should stay 0).
        self.journal_file_errors = 0
        self.alerts_fired = 0
        #: Lease requests the store granted and refused (export them as counters; see ``leases_live``).
        self.leases_taken = 0
        self.leases_refused = 0
        #: Settled calls that cost more than their hold, per budget (see ``budgets.overruns``).
        self.overruns = OverrunTally()
        self._closed = False
        self.settle_mode: SettleMode = settle_mode
        self._settler: SettleQueue | None = (
            SettleQueue(
                self._apply_batch, capacity=settle_queue_size, batch=settle_batch, linger=settle_linger
            )
            if settle_mode == "background"
            else None
        )
        self.lease_fraction = None if lease_fraction is None else float(lease_fraction)
        self.lease_seconds = float(lease_seconds)
        self._leases: LeaseBook | None = (
            LeaseBook(float(lease_fraction), float(lease_seconds), self._close_leases, clock)
            if lease_fraction is not None
            else None
        )
        self.max_call_seconds = float(max_call_seconds)
        self._keeper = HoldKeeper(
            self.store, ttl=self.reservation_ttl, max_call_seconds=self.max_call_seconds, clock=clock
        )
        self.set_budgets(budgets)
        #: The local journal file (``journal_path``; see ``budgets.durable``), or None.
        self._file = JournalFile(journal_path) if journal_path is not None else None
        if self._file is not None:
            for entry in self._file.take_over():
                self._journal.append(entry)
        _LIVE.add(self)
        if len(self._journal):
            self._maybe_replay()

    # -- configuration -------------------------------------------------------------------------------------

    @property
    def budgets(self) -> tuple[Budget, ...]:
        return tuple(c.budget for c in self._compiled)

    def set_budgets(self, budgets: Iterable[Budget]) -> None:
        """Replace the budgets. Spend already recorded is kept for every budget whose name, scope and window
        are unchanged (store keys do not depend on limits, actions or thresholds)."""
        compiled: list[_Compiled] = []
        seen: set[str] = set()
        for order, budget in enumerate(budgets):
            if not isinstance(budget, Budget):
                raise ConfigurationError(f"expected a Budget, got {type(budget).__name__}")
            if budget.name in seen:
                raise ConfigurationError(f"two budgets are named {budget.name!r}")
            seen.add(budget.name)
            marks = _marks(budget)
            enforced = budget.action != "warn"
            refusal = tuple(m for m in marks if m.percent == 100) if enforced else ()
            compiled.append(_Compiled(budget, order, marks, refusal))
        self._compiled = tuple(compiled)
        self._by_name = {c.budget.name: c for c in compiled}
        if self._leases is not None:
            # Leases were sized and granted under the old limits.
            self._leases.retire()

    def add_alert_sink(self, sink: AlertSink | Callable[[Alert], object]) -> None:
        self._sinks = (*self._sinks, as_sink(sink))

    # -- matching --------------------------------------------------------------------------------------------

    def matching(
        self, attribution: Mapping[str, str], model_id: str, model_family: str | None
    ) -> list[tuple[Budget, tuple[tuple[str, str], ...]]]:
        """Every budget that applies to a call, with the concrete scope values it is counted under."""
        found: list[tuple[Budget, tuple[tuple[str, str], ...]]] = []
        for compiled in self._compiled:
            values = compiled.budget.match(attribution, model_id, model_family)
            if values is not None:
                found.append((compiled.budget, values))
        return found

    def _lines(
        self,
        attribution: Mapping[str, str],
        model_id: str,
        model_family: str | None,
        now: float,
        cost_nanos: int,
        tokens: Mapping[str, int],
    ) -> list[tuple[_Compiled, ReservationLine]]:
        lines: list[tuple[_Compiled, ReservationLine]] = []
        for compiled in self._compiled:
            budget = compiled.budget
            values = budget.match(attribution, model_id, model_family)
            if values is None:
                continue
            start, end = budget.window.bounds(now)
            ref = _ref(budget.name, values, budget.window.kind, budget.window.timezone, start, end)
            lines.append((compiled, ReservationLine(budget, ref, cost_nanos, budget.weigh(tokens))))
        return lines

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
        check_amount(cost_nanos, "cost_nanos")
        check_token_counts(tokens)
        now = self._clock()
        found = self._lines(attribution, model_id, model_family, now, cost_nanos, tokens)
        rid = _reservation_id()
        deadline = now + self.reservation_ttl
        lines = tuple(line for _, line in found)
        reservation = Reservation(
            id=rid,
            model_id=model_id,
            model_family=model_family,
            cost_nanos=cost_nanos,
            tokens=MappingProxyType(dict(tokens)),
            lines=lines,
            created_at=now,
            deadline=deadline,
        )
        if not lines:
            return reservation
        if self._leases is not None and not self._closed:
            leased = self._reserve_leased(reservation, now)
            if leased is not None:
                return leased
        holds = [
            Hold(
                ref=line.ref,
                limit_usd=line.budget.limit_nanos,
                limit_tokens=line.budget.limit_milli,
                usd=line.usd,
                tokens=line.tokens,
                enforce=line.budget.action != "warn",
                refusal_marks=compiled.refusal_marks,
                charge_on_expiry=line.budget.on_expired_hold == "charge",
            )
            for compiled, line in found
        ]
        try:
            result = self.store.reserve(rid, holds, now_ms=int(now * 1000), deadline_ms=int(deadline * 1000))
        except StoreError as exc:
            return self._reserve_offline(reservation, exc)
        reservation.epochs = tuple(check.epoch for check in result.checks)
        if self._leases is not None:
            self._leases.seen(lines, result.checks, granted=result.granted)
        if not result.granted:
            try:
                self._alert_refusals(lines, result.checks)
            except Exception:  # the refusal must reach the caller whatever an alert does
                log.exception("alerting for refused reservation %s failed", rid)
        refusals = [
            refusal
            for line, check in zip(lines, result.checks, strict=True)
            if check.refused
            for refusal in refusals_of(line, check)
        ]
        if not result.granted:
            self._refuse(model_id, [r for r in refusals if r.action != "warn"])
        if refusals:
            reservation.warnings = tuple(refusals)
            for refusal in refusals:
                log.info(
                    "shadow budget %s would have refused the call: %s", refusal.budget.name, refusal.reason
                )
        self._keeper.track(rid, rid, tuple([line.ref for line in lines]), now, owner=reservation)
        self._maybe_replay()
        return reservation

    def _reserve_leased(self, reservation: Reservation, now: float) -> Reservation | None:
        """Admit the call against this process's leases, taking new ones where needed (one store round
        trip); None: the call takes the ordinary path (see ``budgets.leases``)."""
        book = self._leases
        assert book is not None
        lines = reservation.lines
        for _ in range(2):
            leases = book.admit(lines, now)
            if leases is not None:
                reservation.leases = leases
                return reservation
            missing = book.missing(lines)
            if not missing:
                continue  # another thread leased them meanwhile
            requested = [book.request(line) for line in missing]
            holds = [hold for hold in requested if hold is not None]
            if len(holds) < len(requested):
                return None
            lease_id = _reservation_id()
            try:
                result = self.store.reserve(
                    lease_id,
                    holds,
                    now_ms=int(now * 1000),
                    deadline_ms=int((now + book.seconds + self.reservation_ttl) * 1000),
                )
            except StoreError as exc:
                return self._reserve_offline(reservation, exc)
            if not result.granted:
                self.leases_refused += 1
                book.seen(missing, result.checks, granted=False)
                return None
            self.leases_taken += 1
            lifetime = book.seconds + self.max_call_seconds
            for lease in book.install(lease_id, missing, holds, result.checks, now):
                self._keeper.track(lease, lease_id, (lease.ref,), now, lifetime=lifetime)
        return None

    def _close_leases(self, leases: list[Lease]) -> None:
        # One settlement per closed lease replaces its hold with the spend of every call it admitted (zero
        # for an unused lease, which simply gives its capacity back).
        by_name = self._by_name
        for lease in leases:
            self._keeper.forget(lease)
            spend = Spend(
                ref=lease.ref,
                usd=lease.spent_usd,
                tokens=lease.spent_tokens,
                marks=_current_marks(by_name.get(lease.budget.name), lease.budget) if lease.used else (),
                epoch=lease.epoch,
            )
            entry = JournalEntry(
                reservation_id=lease.id,
                spends=(spend,),
                model=None,
                tokens=_NO_TOKENS,
                charge=False,
                cost_nanos=lease.spent_usd,
                tallies=lease.tallies,  # a closed lease admits and settles nothing more
            )
            try:
                self._submit(entry)
            except Exception:
                # Not an outage (those are journalled by _apply) but a fault: this runs on the caller's
                # thread or the lease keeper's, and neither may lose the lease's spend to it.
                log.exception("settling lease %s (%d nano-USD) failed; journalled", lease.id, lease.spent_usd)
                self._journal.append(entry)

    def _reserve_offline(self, reservation: Reservation, exc: StoreError) -> Reservation:
        self.store_errors += 1
        if self.on_store_error == "deny":
            if isinstance(exc, StoreUnavailableError):
                name, reason = exc.store, exc.reason
            else:
                name, reason = self.store.name, str(exc)
            raise StoreUnavailableError(name, f"{reason}; outage policy is 'deny'") from exc
        if self._journal.full:
            raise StoreUnavailableError(
                self.store.name, f"{exc}; the local spend journal is full, so no more spend can be recorded"
            ) from exc
        log.warning(
            "budget store %s unavailable (%s); proceeding without a hold (policy 'allow')",
            self.store.name,
            exc,
        )
        reservation.offline = True
        return reservation

    def _refuse(self, model_id: str, refusals: Sequence[Refusal]) -> None:
        for r in refusals:
            target = r.downgrade_to
            if r.action == "downgrade" and target is not None and target != model_id:
                raise DowngradeRequiredError(
                    downgrade_to=target,
                    refusals=refusals,
                    budget=r.budget.name,
                    scope=dict(r.scope),
                    window=r.budget.window.kind,
                    window_start=r.window_start,
                    resets_at=r.resets_at,
                    unit=r.unit,
                    limit=r.limit,
                    spent=r.spent,
                    reserved=r.reserved,
                    requested=r.requested,
                    reason=f"{r.reason}; retry with the cheaper model {target}",
                )
        r = refusals[0]
        raise BudgetBlockedError(
            refusals=refusals,
            budget=r.budget.name,
            scope=dict(r.scope),
            window=r.budget.window.kind,
            window_start=r.window_start,
            resets_at=r.resets_at,
            unit=r.unit,
            limit=r.limit,
            spent=r.spent,
            reserved=r.reserved,
            requested=r.requested,
            reason=r.reason,
        )

    def settle(self, reservation: Reservation, cost_nanos: int, tokens: Mapping[str, int]) -> None:
        """Record the actual cost and tokens, replacing the hold, exactly once."""
        check_amount(cost_nanos, "cost_nanos")
        check_token_counts(tokens)
        if not reservation._finish("settled") or not reservation.lines:
            return
        self._keeper.forget(reservation.id)
        if cost_nanos > reservation.cost_nanos or tokens:
            self.overruns.note(reservation, cost_nanos, tokens)
        if reservation.leases:
            assert self._leases is not None
            weighted = [line.budget.weigh(tokens) for line in reservation.lines]
            self._leases.settle(
                reservation.leases, reservation.lines, cost_nanos, weighted, reservation.model_id, tokens
            )
            return
        by_name = self._by_name
        epochs = reservation.epochs or (None,) * len(reservation.lines)
        spends = tuple(
            Spend(
                ref=line.ref,
                usd=cost_nanos,
                tokens=line.budget.weigh(tokens),
                marks=_current_marks(by_name.get(line.budget.name), line.budget),
                epoch=epoch,
            )
            for line, epoch in zip(reservation.lines, epochs, strict=True)
        )
        entry = JournalEntry(
            reservation_id=reservation.id,
            spends=spends,
            model=reservation.model_id,
            tokens=MappingProxyType(dict(tokens)),
            charge=reservation.offline,
            cost_nanos=cost_nanos,
        )
        self._submit(entry)

    def _submit(self, entry: JournalEntry) -> None:
        durable = self._file
        if durable is not None and self._settler is not None:
            # Queued in memory until the batch goes out: on disk first, so a killed process keeps it.
            self._durable(durable.add, entry)
        if self._settler is not None and self._settler.submit(entry):
            return
        if self._apply(entry):
            self._maybe_replay()
        else:
            if durable is not None:
                self._durable(durable.add, entry)
                self._durable(durable.sync)
            self._journal.append(entry)

    def _durable(self, operation: Callable[..., None], *args: object) -> None:
        """A journal-file operation that must never fail the settlement it protects (a full disk)."""
        try:
            operation(*args)
        except OSError as exc:
            self.journal_file_errors += 1
            log.error("could not write the settlement journal file: %s", exc)

    def release(self, reservation: Reservation) -> None:
        """Drop the hold of a call that failed before inference. Never raises for store errors."""
        if not reservation._finish("released") or not reservation.lines or reservation.offline:
            return
        self._keeper.forget(reservation.id)
        if reservation.leases:
            assert self._leases is not None
            self._leases.release(reservation.leases, reservation.lines)
            return
        try:
            self.store.release(
                reservation.id, [line.ref for line in reservation.lines], now_ms=self._now_ms()
            )
        except StoreError as exc:
            self.store_errors += 1
            log.warning(
                "could not release reservation %s (%s); its hold expires at its deadline", reservation.id, exc
            )

    def on_overdue(self, reservation: Reservation, callback: Callable[[], None]) -> None:
        """Settle a call that outlives ``max_call_seconds`` with ``callback`` (run on the hold keeper's
        thread; it should settle or release ``reservation``) instead of letting its hold lapse. The wrapper
        uses it to settle streams their caller never reads or closes (see ``budgets.keeper``)."""
        if reservation.leases and reservation.state == "held":
            # A call admitted from a lease holds nothing of its own to renew (its leases are renewed), so
            # it is tracked only once something is to happen when it is overdue: off the leased hot path.
            self._keeper.track(reservation.id, reservation.id, (), reservation.created_at, owner=reservation)
        self._keeper.on_overdue(reservation.id, callback)

    @property
    def holds_renewed(self) -> int:
        """Store operations that renewed the holds of long calls (export it as a counter)."""
        return self._keeper.renewals

    @property
    def renewal_failures(self) -> int:
        """Renewals the store could not take, retried a period later (export it as a counter)."""
        return self._keeper.failures

    @property
    def overdue_calls(self) -> int:
        """Calls held longer than ``max_call_seconds`` and no longer renewed (export it as a counter)."""
        return self._keeper.overdue

    # -- settlement plumbing -------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _apply(self, entry: JournalEntry) -> bool:
        try:
            outcomes = self.store.settle(
                entry.reservation_id,
                entry.spends,
                now_ms=self._now_ms(),
                model=entry.model,
                tokens=entry.tokens,
                charge=entry.charge,
                tallies=entry.tallies,
            )
        except StoreError as exc:
            self.store_errors += 1
            log.warning(
                "could not settle reservation %s (%s); journalled for replay", entry.reservation_id, exc
            )
            return False
        if self._file is not None:
            self._durable(self._file.done, (entry.reservation_id,))
        self._alert(entry, outcomes)
        return True

    def _apply_batch(self, entries: list[JournalEntry]) -> None:
        """Send queued settlements in one batch (the settle thread, or :meth:`flush`). Never raises."""
        durable = self._file
        if durable is not None:
            self._durable(durable.sync)  # the batch's records reach the disk before it goes out
        requests = [
            SettleRequest(
                e.reservation_id, e.spends, model=e.model, tokens=e.tokens, charge=e.charge, tallies=e.tallies
            )
            for e in entries
        ]
        try:
            results = self.store.settle_many(requests, now_ms=self._now_ms())
        except StoreError as exc:
            results = [exc] * len(entries)
        except Exception:
            # Not an outage but a fault in the store: settle one by one so one bad entry cannot sink the
            # rest; what still fails is logged with its reservation id and amount.
            log.exception("batched settlement failed; settling %d entries one by one", len(entries))
            for entry in entries:
                try:
                    if not self._apply(entry):
                        self._journal.append(entry)
                except Exception:
                    log.exception(
                        "settling reservation %s (%d nano-USD) failed", entry.reservation_id, entry.cost_nanos
                    )
            return
        if durable is not None:
            self._durable(
                durable.done,
                [
                    e.reservation_id
                    for e, r in zip(entries, results, strict=True)
                    if not isinstance(r, StoreError)
                ],
            )
        applied = False
        failures: list[StoreError] = []
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, StoreError):
                if not any(result is seen for seen in failures):
                    failures.append(result)  # one failed store operation, however many entries it carried
                    self.store_errors += 1
                log.warning(
                    "could not settle reservation %s (%s); journalled for replay",
                    entry.reservation_id,
                    result,
                )
                self._journal.append(entry)
                continue
            applied = True
            try:
                self._alert(entry, result)
            except Exception:
                log.exception("alerting for reservation %s failed", entry.reservation_id)
        if applied:
            self._maybe_replay()

    def _alert_refusals(self, lines: Sequence[ReservationLine], checks: Sequence[Check]) -> None:
        for line, check in zip(lines, checks, strict=True):
            for mark in check.fired:
                self._send(alert_of(line.budget, line.ref, check.state, mark, refused_request=line))

    def _send(self, alert: Alert | None) -> None:
        if alert is None:
            return
        self.alerts_fired += 1
        for sink in self._sinks:
            try:
                sink.send(alert)
            except Exception:
                log.exception("alert sink %r failed", sink)

    def _alert(self, entry: JournalEntry, outcomes: Sequence[SettleOutcome]) -> None:
        by_name = self._by_name
        for spend, outcome in zip(entry.spends, outcomes, strict=True):
            if not outcome.fired:
                continue
            compiled = by_name.get(spend.ref.budget)
            if compiled is None:
                continue
            budget = compiled.budget
            for mark in outcome.fired:
                self._send(alert_of(budget, spend.ref, outcome.state, mark))

    def _maybe_replay(self) -> None:
        if len(self._journal) and self._replaying.acquire(blocking=False):
            try:
                self._replay(self.replay_batch)
            finally:
                self._replaying.release()

    def _replay(self, limit: int | None) -> int:
        done = 0
        while limit is None or done < limit:
            entry = self._journal.peek()
            if entry is None or not self._apply(entry):
                break
            self._journal.pop(entry)
            done += 1
        return done

    def flush(self) -> int:
        """Apply queued settlements and replay the whole journal now; returns how many settlements the
        store has not taken yet (0 when it took all)."""
        self._drain()
        with self._replaying:
            self._replay(None)
        return len(self._journal) + self.pending_settlements

    def _drain(self) -> None:
        if self._leases is not None:
            self._leases.retire()
        if self._settler is not None:
            self._settler.drain()

    @property
    def pending_settlements(self) -> int:
        """Settlements queued in background mode and not yet applied (export it as a gauge)."""
        return len(self._settler) if self._settler is not None else 0

    @property
    def leases_live(self) -> int:
        """Counters this process holds a lease on (``lease_fraction``; export it as a gauge)."""
        return len(self._leases) if self._leases is not None else 0

    @property
    def journal_depth(self) -> int:
        """Settlements waiting for the store (export it as a gauge)."""
        return len(self._journal)

    @property
    def journal_dropped(self) -> int:
        """Settlements lost because the journal was full (export it as a counter; should stay 0)."""
        return self._journal.dropped

    @property
    def journal_dropped_nanos(self) -> int:
        return self._journal.dropped_nanos

    # -- reads ---------------------------------------------------------------------------------------------

    def _budget(self, name: str) -> Budget:
        for compiled in self._compiled:
            if compiled.budget.name == name:
                return compiled.budget
        raise ConfigurationError(f"no budget named {name!r}")

    def _current_ref(self, budget: Budget, scope: Mapping[str, str]) -> CounterRef:
        start, end = budget.window.bounds(self._clock())
        return _ref(
            budget.name, tuple(sorted(scope.items())), budget.window.kind, budget.timezone, start, end
        )

    def read(self, budget: str, scope: Mapping[str, str] | None = None) -> BudgetStatus:
        """The current window of one budget for concrete scope values (``{"user": "u-17"}`` for a per-user
        budget; defaults to the budget's own scope, which suits budgets without wildcards)."""
        config = self._budget(budget)
        self._drain()
        values = dict(scope) if scope is not None else _fixed_scope(config)
        if any(v == WILDCARD for v in values.values()):
            raise ConfigurationError(f"budget {budget!r} has a wildcard scope; pass concrete scope values")
        ref = self._current_ref(config, values)
        (state,) = self.store.read([ref], now_ms=self._now_ms())
        return status_of(config, state)

    def status(self, budget: str | None = None) -> list[BudgetStatus]:
        """Every current-window counter of the configured budgets (one per scope value for wildcard
        budgets; budgets without wildcards are listed even before their first call)."""
        self._drain()
        now = self._clock()
        results: list[BudgetStatus] = []
        for compiled in self._compiled:
            config = compiled.budget
            if budget is not None and config.name != budget:
                continue
            start, _ = config.window.bounds(now)
            states = [
                s
                for s in self.store.list(now_ms=int(now * 1000), budget=config.name)
                if s.ref.start == start
                and s.ref.window == config.window.kind
                and s.ref.timezone == config.timezone
            ]
            fixed = _fixed_scope(config)
            if not any(v == WILDCARD for v in fixed.values()) and not states:
                (state,) = self.store.read([self._current_ref(config, fixed)], now_ms=int(now * 1000))
                states = [state]
            results.extend(status_of(config, s) for s in sorted(states, key=lambda s: s.ref.scope))
        return results

    def reset(self, budget: str, scope: Mapping[str, str] | None = None) -> int:
        """Forget the current window's spend of a budget (all scope values unless ``scope`` is given);
        returns how many counters existed.

        Live holds survive the reset (:meth:`Store.forget_spend`): reservations in flight and other
        processes' capacity leases keep their capacity held, and their spend is charged to the fresh
        window when they settle, so a reset never lets them overshoot it."""
        config = self._budget(budget)
        self._drain()
        if scope is not None:
            refs = [self._current_ref(config, scope)]
        else:
            refs = [s.ref for s in self.status(budget)]
        return self.store.forget_spend(refs, now_ms=self._now_ms())

    # -- lifecycle -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Apply queued settlements and replay the journal (best effort), drain alert sinks and close a
        store this ledger created. Settlements made after closing are applied synchronously."""
        if self._closed:
            return
        self._closed = True
        self._keeper.stop()
        try:
            if self._leases is not None:
                self._leases.retire()
                self._leases.stop()
            if self._settler is not None:
                self._settler.close()
            remaining = self.flush()
            if remaining:
                log.error("closing with %d settlements the budget store never took", remaining)
        finally:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as exc:
                    log.error("could not close the settlement journal file: %s", exc)
            for sink in self._sinks:
                try:
                    sink.close()
                except Exception:
                    log.exception("closing alert sink %r failed", sink)
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fixed_scope(budget: Budget) -> dict[str, str]:
    values = dict(budget.scope)
    if budget.model is not None:
        values["model"] = budget.model
    if budget.model_family is not None:
        values["model_family"] = budget.model_family
    return values


def _current_marks(compiled: _Compiled | None, budget: Budget) -> tuple[Mark, ...]:
    # Thresholds follow the budget as configured now, so a raised limit moves its alert points.
    return compiled.marks if compiled is not None else _marks(budget)
