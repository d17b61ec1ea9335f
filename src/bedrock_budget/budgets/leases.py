"""Capacity leases: a process holds a slice of each budget in the store and admits calls against it locally.

Without leases every budgeted call costs one store round trip, its reservation. With
``lease_fraction=f`` the ledger reserves, in one store operation, a *lease* on every counter a call needs
and has no lease for: ``f`` of the budget's limit (or the call's worst case, when larger). Later calls are
admitted against what is left of those leases in memory, with no store round trip at all, until a lease
runs short or its ``lease_seconds`` are over; then it is *retired* (admits nothing more) and, once its last
admitted call has settled, *closed*: one settlement replaces the lease's hold with the actual spend of all
its calls (and their per-model tallies), exactly once, through the ledger's usual settle path (queued in
background mode, journalled when the store is down). The spend-ledger entries of the calls it saw settle
while live are summed per dimensions and hour (``stores.tracking.TrackSums``) and sent when it retires: a
busy lease's thousands of calls by a few users are a few entries, not a store write each; a call that
settles after its lease retired is tracked by itself.

A budget with ``limit_requests`` leases requests the same way (``f`` of the limit, at least one): a call
takes one from the lease, a released call puts it back, and the lease's settlement counts the calls it
admitted and settled as requests made, giving the rest back.

Why this never overshoots: a lease is a reservation like any other. The store admitted it only when
``spent + held + lease <= limit``, and a process admits a call only when the call's worst case fits what
is left of its lease, so what all processes can spend is still bounded by the limit. A lease's store
deadline is ``lease_seconds + reservation_ttl`` after it was taken, and the ledger's hold keeper
(``budgets.keeper``) renews it while it is open, so it outlives every call it admitted, however long.

What it costs:

- Visibility: other processes see a lease's spend when it closes (about ``lease_seconds`` plus the
  longest call in flight), not after each call; until then they see the whole lease as held. Threshold
  alerts fire when the lease closes. :meth:`Ledger.read`, ``status``, ``reset`` and ``flush`` retire this
  process's leases first, so a process always sees its own spend.
- Stranded capacity near the limit: capacity leased by one process is unavailable to the others until
  that lease is used or closed, so a call may be refused while up to ``f`` of the limit per other process
  is still leased. A refused lease request is never a refusal: the call then takes the ordinary path (an
  exact reservation of its worst case), which refuses only when that alone does not fit; and lease
  requests shrink to half of the free capacity last seen, so leases taper off as a budget runs out.
- Nothing for warn budgets: a lease is granted only when it fits under every budget's limit, warn ones
  included, so a call admitted from a lease crosses no limit, and a call that would takes the ordinary
  path, which reports the would-be refusal as before.

Resetting a budget (``Ledger.reset``, ``bedrock-budget budgets reset``) keeps its live holds, so leases
and calls in flight keep their capacity held and their spend is charged to the fresh window.

The bookkeeping (:class:`LeaseBookCore`) is shared by the sync ledger (:class:`LeaseBook`: the store call
on the caller's thread, a keeper thread retiring leases) and the event loop's
(:mod:`bedrock_budget.budgets.async_leases`: the store call awaited, a loop task retiring leases).

This module is the bookkeeping both ledgers share (:class:`LeaseBookCore`, no I/O); the sync ledger's
book takes leases with a store call on the caller's thread (:mod:`bedrock_budget.budgets.sync_leases`),
the async ledger's with an awaited one (:mod:`bedrock_budget.budgets.async_leases`).

A forked child starts without leases (its parent's stay its parent's). A killed process's leases expire
at their deadline: the budget gets their capacity back but not the spend of the calls they admitted, as
with reservations a killed process never settled.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from bedrock_budget.budgets.lines import ReservationLine
from bedrock_budget.budgets.model import Budget
from bedrock_budget.stores.base import (
    Check,
    CounterRef,
    Hold,
    Mark,
    ReserveResult,
    SettleRequest,
    Spend,
    add_call,
)
from bedrock_budget.stores.tracking import Tracking, TrackSums

log = logging.getLogger("bedrock_budget.leases")

#: Lease requests shrink to this share of the capacity last seen free, so leases taper off near a limit.
_FREE_SHARE: Final = 2


@dataclass(eq=False, slots=True)
class Lease:
    """A slice of one counter held in the store for this process."""

    id: str
    ref: CounterRef
    budget: Budget
    #: Amounts held in the store; ``None`` for a unit the budget does not limit (not tracked locally).
    usd: int | None
    tokens: int | None
    grant_until: float
    epoch: str | None
    usd_left: int = 0
    tokens_left: int = 0
    in_flight: int = 0
    spent_usd: int = 0
    spent_tokens: int = 0
    #: Requests held under a request limit (``None``: no limit), left to admit, and made (calls settled).
    requests: int | None = None
    requests_left: int = 0
    spent_requests: int = 0
    tallies: dict[str, dict[str, int]] = field(default_factory=dict)
    #: What the calls it admitted and saw settled add to the spend ledger, summed while it is live
    #: (``None``: nothing yet); handed over when it retires.
    tracked: TrackSums | None = None
    retired: bool = False
    closed: bool = False

    def fits(self, line: ReservationLine) -> bool:
        return (
            (self.usd is None or self.usd_left >= line.usd)
            and (self.tokens is None or self.tokens_left >= line.tokens)
            and (self.requests is None or self.requests_left >= 1)
        )

    def take(self, line: ReservationLine) -> None:
        self.usd_left -= line.usd
        self.tokens_left -= line.tokens
        self.requests_left -= 1
        self.in_flight += 1

    def give_back(self, line: ReservationLine) -> None:
        self.usd_left += line.usd
        self.tokens_left += line.tokens
        self.requests_left += 1
        self.in_flight -= 1

    def charge(
        self, line: ReservationLine, usd: int, tokens: int, model: str, counts: Mapping[str, int]
    ) -> None:
        # The call's worst case comes back and its actual amounts go out: left may go negative when an
        # estimate was short, which only retires the lease sooner.
        self.usd_left += line.usd - usd
        self.tokens_left += line.tokens - tokens
        self.in_flight -= 1
        self.spent_usd += usd
        self.spent_tokens += tokens
        self.spent_requests += 1  # the call's request stays taken: settling never changes the count
        add_call(self.tallies, model, usd, counts)

    @property
    def used(self) -> bool:
        return bool(self.tallies)

    def settlement(self, marks: tuple[Mark, ...]) -> SettleRequest:
        """The one settlement of a closed lease: its hold replaced by the spend of every call it admitted
        (nothing, for an unused lease, which gives its capacity back). A closed lease admits and settles
        nothing more, so its tallies are final."""
        spend = Spend(
            ref=self.ref,
            usd=self.spent_usd,
            tokens=self.spent_tokens,
            marks=marks if self.used else (),
            epoch=self.epoch,
            requests=None if self.requests is None else self.spent_requests,
        )
        return SettleRequest(self.id, (spend,), self.tallies)


def _share(limit: int | None, fraction: float, worst: int, free: int | None) -> int | None:
    if limit is None:
        return None
    size = int(limit * fraction)  # a size, not money: float rounding only changes how much is leased
    if free is not None:
        size = min(size, max(free, 0) // _FREE_SHARE)
    return max(size, worst)


#: What hears of each new lease (the ledger's hold keeper renews it while it is open).
TrackLease = Callable[[Lease, float], None]
#: What takes the leases that closed and the spend-ledger sums of those that retired (see ``LeaseBookCore``).
OnClosed = Callable[[list[Lease], list[TrackSums]], None]


class LeaseBookCore:
    """This process's live leases, one per counter, and the free capacity last seen per counter: the
    bookkeeping, without I/O. Its drivers make the one store call of taking a lease and retire leases
    whose time is over: :class:`LeaseBook` from threads, ``budgets.async_leases`` from an event loop.

    ``on_closed`` receives every lease that has closed (retired, nothing in flight): the ledger settles it
    (for nothing, when no call used it); and the spend-ledger sums of every lease that has retired, which
    the ledger sends then, whether or not calls it admitted are still running (those are tracked one by
    one when they settle), so a call never settled cannot hold back the tracking of the others. It is
    called outside the book's lock, which is only ever held for bookkeeping (never across a store call),
    so any thread may settle or release a call.
    """

    def __init__(
        self,
        fraction: float,
        seconds: float,
        on_closed: OnClosed,
        clock: Callable[[], float],
        *,
        hold_ttl: float,
        new_id: Callable[[], str],
    ) -> None:
        self.fraction = fraction
        self.seconds = seconds
        self._on_closed = on_closed
        self.clock = clock
        #: How long a lease's hold outlives the end of its grant in the store (the reservation TTL).
        self.hold_ttl = hold_ttl
        self._new_id = new_id
        #: Lease requests the store granted and refused.
        self.taken = 0
        self.refused = 0
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[CounterRef, Lease] = {}
        # Leases by the end of their grant, so the keeper touches only those that are due, however many
        # counters (per-user budgets of a busy fleet) have one; the count breaks ties between equal times.
        self._due: list[tuple[float, int, Lease]] = []
        self._order = itertools.count()
        self._free: dict[CounterRef, tuple[int | None, int | None, int | None]] = {}

    def after_fork(self) -> None:
        """In a forked child: the parent's leases are the parent's to use and close."""
        self._reset()

    def __len__(self) -> int:
        return len(self._live)

    # -- taking leases: the driver makes the store call between plan() and granted() ---------------------

    def plan(self, lines: Sequence[ReservationLine]) -> tuple[list[ReservationLine], list[Hold]] | None:
        """The lines of a call that need a new lease, and the hold of each. Nothing: every counter has a
        live lease again (admit the call once more). None: a lease would admit no call but this one, so
        the call takes the ordinary path."""
        missing = self.missing(lines)
        requested = [self.request(line) for line in missing]
        holds = [hold for hold in requested if hold is not None]
        if len(holds) < len(requested):
            return None
        return missing, holds

    @property
    def retire_period(self) -> float:
        """How often the driver retires the leases whose time is over."""
        return max(self.seconds / 4, 0.01)

    def deadline_ms(self, now: float) -> int:
        """The store deadline of a lease taken at ``now`` (renewed while it is open)."""
        return int((now + self.seconds + self.hold_ttl) * 1000)

    def granted(
        self,
        lease_id: str,
        lines: Sequence[ReservationLine],
        holds: Sequence[Hold],
        result: ReserveResult,
        now: float,
        track: TrackLease,
    ) -> bool:
        """Take the store's answer to a lease request: install the leases it granted (``track`` hears of
        each) or remember the capacity it found free. False: refused."""
        if not result.granted:
            self.refused += 1
            self.seen(lines, result.checks, granted=False)
            return False
        self.taken += 1
        for lease in self.install(lease_id, lines, holds, result.checks, now):
            track(lease, now)
        return True

    # -- admitting calls ---------------------------------------------------------------------------------

    def admit(self, lines: Sequence[ReservationLine], now: float) -> tuple[Lease, ...] | None:
        """Take every line from a live lease, or none (None: some line needs a new lease)."""
        closed: list[Lease] = []
        sums: list[TrackSums] = []
        leases: list[Lease] = []
        with self._lock:
            for line in lines:
                lease = self._live.get(line.ref)
                if lease is not None and (
                    now >= lease.grant_until or lease.budget is not line.budget or not lease.fits(line)
                ):
                    self._retire(lease, closed, sums)
                    lease = None
                if lease is None:
                    break
                leases.append(lease)
            admitted = len(leases) == len(lines)
            if admitted:
                for lease, line in zip(leases, lines, strict=True):
                    lease.take(line)
        if closed or sums:
            self._on_closed(closed, sums)
        return tuple(leases) if admitted else None

    def missing(self, lines: Sequence[ReservationLine]) -> list[ReservationLine]:
        with self._lock:
            return [line for line in lines if line.ref not in self._live]

    def request(self, line: ReservationLine) -> Hold | None:
        """The hold of a new lease for one line's counter; None when it could admit no call but this one
        (near the limit, or a call as large as a lease), where an ordinary reservation does as well."""
        budget = line.budget
        free_usd, free_tokens, free_requests = self._free.get(line.ref, (None, None, None))
        usd = _share(budget.limit_nanos, self.fraction, line.usd, free_usd)
        tokens = _share(budget.limit_milli, self.fraction, line.tokens, free_tokens)
        requests = _share(budget.limit_requests, self.fraction, 1, free_requests)
        if (
            (usd is None or usd == line.usd)
            and (tokens is None or tokens == line.tokens)
            and (requests is None or requests == 1)
        ):
            return None
        return Hold(
            ref=line.ref,
            limit_usd=budget.limit_nanos,
            limit_tokens=budget.limit_milli,
            usd=line.usd if usd is None else usd,
            tokens=line.tokens if tokens is None else tokens,
            # Every budget, warn ones included: a lease never crosses a limit, so neither do its calls.
            enforce=True,
            # A lease that expires unsettled lost the spend of every call it admitted, which the whole
            # lease bounds: charged, it is never undercounted.
            charge_on_expiry=budget.on_expired_hold == "charge",
            limit_requests=budget.limit_requests,
            requests=requests or 1,
        )

    def install(
        self,
        lease_id: str,
        lines: Sequence[ReservationLine],
        holds: Sequence[Hold],
        checks: Sequence[Check],
        now: float,
    ) -> list[Lease]:
        """Record leases the store granted (one id for all of them: one reservation, settled per counter)
        and return them."""
        closed: list[Lease] = []
        sums: list[TrackSums] = []
        installed: list[Lease] = []
        with self._lock:
            for line, hold, check in zip(lines, holds, checks, strict=True):
                self._note(line, check, hold.usd, hold.tokens, hold.requests)
                previous = self._live.get(line.ref)
                if previous is not None:
                    # Another thread refilled the same counter meanwhile: its lease stops admitting calls.
                    self._retire(previous, closed, sums)
                budget = line.budget
                usd = hold.usd if budget.limit_nanos is not None else None
                tokens = hold.tokens if budget.limit_milli is not None else None
                requests = hold.requests if budget.limit_requests is not None else None
                lease = self._live[line.ref] = Lease(
                    id=lease_id,
                    ref=line.ref,
                    budget=budget,
                    usd=usd,
                    tokens=tokens,
                    grant_until=now + self.seconds,
                    epoch=check.epoch,
                    usd_left=usd or 0,
                    tokens_left=tokens or 0,
                    requests=requests,
                    requests_left=requests or 0,
                )
                heapq.heappush(self._due, (lease.grant_until, next(self._order), lease))
                installed.append(lease)
            self._start_keeper()
        if closed or sums:
            self._on_closed(closed, sums)
        return installed

    def seen(self, lines: Sequence[ReservationLine], checks: Sequence[Check], *, granted: bool) -> None:
        """Remember the free capacity a reservation found (an ordinary one, or a refused lease request),
        so the next lease request is sized to it."""
        with self._lock:
            for line, check in zip(lines, checks, strict=True):
                self._note(
                    line, check, line.usd if granted else 0, line.tokens if granted else 0, int(granted)
                )

    def _note(self, line: ReservationLine, check: Check, usd: int, tokens: int, requests: int) -> None:
        state = check.state
        budget = line.budget
        free_usd = (
            None
            if budget.limit_nanos is None
            else budget.limit_nanos - state.spent_usd - state.held_usd - usd
        )
        free_tokens = (
            None
            if budget.limit_milli is None
            else budget.limit_milli - state.spent_tokens - state.held_tokens - tokens
        )
        free_requests = (
            None
            if budget.limit_requests is None
            else budget.limit_requests - state.spent_requests - state.held_requests - requests
        )
        self._free[line.ref] = (free_usd, free_tokens, free_requests)
        if len(self._free) > 4 * len(self._live) + 1024:
            # Counters of past windows and idle scopes: forget what was seen, the next request re-learns it.
            self._free = {ref: self._free[ref] for ref in self._live if ref in self._free}

    # -- settling calls ----------------------------------------------------------------------------------

    def settle(
        self,
        leases: Sequence[Lease],
        lines: Sequence[ReservationLine],
        usd: int,
        tokens: Sequence[int],
        model: str,
        counts: Mapping[str, int],
        tracking: Tracking | None = None,
        attribution: Mapping[str, str] | None = None,
        at: float = 0.0,
    ) -> bool:
        """Charge a settled call to the leases that admitted it. With ``tracking``, the first of them also
        sums what the call adds to the spend ledger, settled at ``at`` (one lease, so the call is tracked
        once however many budgets it counts against), unless it has retired: False then, and the caller
        tracks the call by itself."""
        closed: list[Lease] = []
        summed = False
        with self._lock:
            first = leases[0]
            if tracking is not None and not first.retired:
                if first.tracked is None:
                    first.tracked = TrackSums(tracking)
                first.tracked.add(attribution or {}, model, usd, counts, at)
                summed = True
            for lease, line, weighted in zip(leases, lines, tokens, strict=True):
                lease.charge(line, usd, weighted, model, counts)
                self._close_if_done(lease, closed)
        if closed:
            self._on_closed(closed, [])
        return summed

    def release(self, leases: Sequence[Lease], lines: Sequence[ReservationLine]) -> None:
        closed: list[Lease] = []
        with self._lock:
            for lease, line in zip(leases, lines, strict=True):
                lease.give_back(line)
                self._close_if_done(lease, closed)
        if closed:
            self._on_closed(closed, [])

    # -- retiring ----------------------------------------------------------------------------------------

    def retire(self, now: float | None = None) -> None:
        """Retire every lease (or, given ``now``, those whose time is over); close what has nothing in
        flight."""
        closed: list[Lease] = []
        sums: list[TrackSums] = []
        with self._lock:
            if now is None:
                for lease in list(self._live.values()):
                    self._retire(lease, closed, sums)
                self._due.clear()
            else:
                due = self._due
                while due and due[0][0] <= now:
                    lease = heapq.heappop(due)[2]
                    if not lease.retired:
                        self._retire(lease, closed, sums)
        if closed or sums:
            self._on_closed(closed, sums)

    def _retire(self, lease: Lease, closed: list[Lease], sums: list[TrackSums]) -> None:
        if self._live.get(lease.ref) is lease:
            del self._live[lease.ref]
        lease.retired = True
        if lease.tracked is not None:
            # Handed over once, here: a retired lease sums no more calls.
            sums.append(lease.tracked)
            lease.tracked = None
        self._close_if_done(lease, closed)

    @staticmethod
    def _close_if_done(lease: Lease, closed: list[Lease]) -> None:
        # A lease closes once: when it is retired and its last admitted call has settled or been released.
        if lease.retired and lease.in_flight == 0 and not lease.closed:
            lease.closed = True
            closed.append(lease)

    def _start_keeper(self) -> None:
        """Make sure leases are retired when their time is over (called with the lock held)."""
        raise NotImplementedError
