"""In-process store (``memory://``), the default.

It mirrors the Lua scripts operation for operation (same purge, tombstone, threshold and expiry rules) so
the contract suite holds for both; one lock makes every operation atomic across threads. Spend lives and
dies with the process: use Redis when several processes share a budget.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from bedrock_budget.errors import ConfigurationError, DefinitionsChangedError, StoreError
from bedrock_budget.stores.base import (
    DEFAULT_KEY_SLACK,
    DEFAULT_PREFIX,
    DEFAULT_TOMBSTONE_RETENTION,
    Check,
    CounterRef,
    CounterState,
    Hold,
    Mark,
    PublishedDefinitions,
    Renewal,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
    SettleStatus,
    Store,
    parse_tallies,
    tally_items,
)
from bedrock_budget.stores.memory_counter import Counter, fits, refusal_marks, spent_in
from bedrock_budget.stores.memory_tracking import MemoryTracks


class MemoryStore(Store):
    """Thread-safe in-process store. ``MemoryStore()`` or ``from_uri("memory://")``."""

    schemes = ("memory",)

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        key_slack: int = DEFAULT_KEY_SLACK,
        tombstone_retention: int = DEFAULT_TOMBSTONE_RETENTION,
    ) -> None:
        super().__init__(prefix=prefix, key_slack=key_slack, tombstone_retention=tombstone_retention)
        self._lock = threading.Lock()
        self._counters: dict[str, Counter] = {}
        self._operations = 0
        self._tracks = MemoryTracks()
        self._definitions: PublishedDefinitions | None = None

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> MemoryStore:
        parts = urlsplit(uri)
        if parts.netloc or parts.path not in ("", "/"):
            raise ConfigurationError(f"memory store URI takes no host or path: {uri!r}")
        return cls(**options)

    @property
    def name(self) -> str:
        return "memory://"

    def _get(self, key: str, now: int) -> Counter | None:
        counter = self._counters.get(key)
        if counter is not None and counter.expires is not None and counter.expires <= now:
            del self._counters[key]
            return None
        return counter

    def _obtain(self, key: str, now: int) -> Counter:
        counter = self._get(key, now)
        if counter is None:
            counter = self._counters[key] = Counter()
        return counter

    def _trim_before(self, now_ms: int) -> int:
        return now_ms - self.tombstone_retention * 1000

    def _sweep(self, now: int) -> None:
        # Expired windows would otherwise stay in memory until their key is touched again.
        self._operations += 1
        if self._operations % 4096 == 0:
            for key in [k for k, c in self._counters.items() if c.expires is not None and c.expires <= now]:
                del self._counters[key]

    def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        trim = self._trim_before(now_ms)
        with self._lock:
            self._sweep(now_ms)
            keys = [self.key(h.ref) for h in holds]
            first = self._get(keys[0], now_ms) if keys else None
            if first is not None and reservation_id in first.live:
                repeated: list[Check] = []
                for key, hold in zip(keys, holds, strict=True):
                    counter = self._get(key, now_ms)
                    repeated.append(
                        Check(counter.state(hold.ref), epoch=counter.epoch)
                        if counter
                        else Check(CounterState(hold.ref))
                    )
                return ReserveResult(granted=True, checks=tuple(repeated), repeated=True)
            granted = True
            counters: list[Counter | None] = []
            found: list[tuple[CounterState, tuple[bool, bool, bool]]] = []
            for key, hold in zip(keys, holds, strict=True):
                counter = self._get(key, now_ms)
                if counter is not None:
                    counter.purge(now_ms, trim)
                state = counter.state(hold.ref) if counter else CounterState(hold.ref)
                refused_usd = not fits(state.spent_usd, state.held_usd, hold.usd, hold.limit_usd)
                refused_tokens = not fits(
                    state.spent_tokens, state.held_tokens, hold.tokens, hold.limit_tokens
                )
                refused_requests = hold.limit_requests is not None and not fits(
                    state.spent_requests, state.held_requests, hold.requests, hold.limit_requests
                )
                if hold.enforce and (refused_usd or refused_tokens or refused_requests):
                    granted = False
                counters.append(counter)
                found.append((state, (refused_usd, refused_tokens, refused_requests)))
            checks: list[Check] = []
            for key, hold, counter, (state, refused) in zip(keys, holds, counters, found, strict=True):
                ttl = hold.ref.ttl_ms(now_ms, self.key_slack)
                fired: tuple[Mark, ...] = ()
                if granted:
                    if counter is None:
                        counter = self._obtain(key, now_ms)
                    if counter.epoch is None:
                        counter.epoch = reservation_id
                        counter.meta = hold.ref.meta()
                    counter.limits = (hold.limit_usd, hold.limit_tokens, hold.limit_requests)
                    requests = 0 if hold.limit_requests is None else hold.requests
                    counter.hold(
                        reservation_id, hold.usd, hold.tokens, deadline_ms, hold.charge_on_expiry, requests
                    )
                elif counter is not None and hold.enforce:
                    fired = refusal_marks(counter, hold, refused, now_ms)
                if counter is not None:
                    counter.touch(ttl, now_ms)
                epoch = counter.epoch if counter is not None else None
                checks.append(Check(state, refused[0], refused[1], fired, epoch, refused[2]))
            return ReserveResult(granted=granted, checks=tuple(checks))

    def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        # Memory cannot be unavailable: every request gets its outcomes.
        return [self._settle(request, now_ms) for request in requests]

    def _settle(self, request: SettleRequest, now_ms: int) -> tuple[SettleOutcome, ...]:
        reservation_id, charge = request.reservation_id, request.charge
        tallies = tally_items(request.tallies)
        trim = self._trim_before(now_ms)
        outcomes: list[SettleOutcome] = []
        with self._lock:
            if request.track is not None:
                retention = self.tombstone_retention
                self._tracks.apply(self.prefix, reservation_id, request.track, retention, now_ms)
            for spend in request.spends:
                key = self.key(spend.ref)
                counter = self._get(key, now_ms)
                status = SettleStatus.NOOP
                if counter is not None:
                    counter.purge(now_ms, trim)
                    if counter.drop_hold(reservation_id):
                        status = SettleStatus.SETTLED
                    elif counter.tombs.pop("x" + reservation_id, None) is not None:
                        status = SettleStatus.LATE
                # Charge mode, or a different epoch: the hold vanished with the counter's data (see base).
                vouched = charge or (
                    spend.epoch is not None and (counter is None or counter.epoch != spend.epoch)
                )
                if (
                    status is SettleStatus.NOOP
                    and vouched
                    and (counter is None or ("d" + reservation_id) not in counter.tombs)
                ):
                    status = SettleStatus.CHARGED
                fired: list[Mark] = []
                if status is not SettleStatus.NOOP:
                    counter = self._obtain(key, now_ms)
                    if charge or status is SettleStatus.CHARGED:
                        counter.tomb("d" + reservation_id, now_ms)
                    if counter.meta is None:
                        counter.meta = spend.ref.meta()
                    counter.spent_usd += spend.usd
                    counter.spent_tokens += spend.tokens
                    if spend.requests is not None:
                        counter.spent_requests += spend.requests
                    counts = counter.tallies
                    for name, value in tallies:
                        if not value:
                            continue
                        if name in counts:
                            counts[name] += value
                        else:
                            # One string per model and token type, shared by every counter (a per-user
                            # budget has as many counters as users), not one per counter.
                            counts[sys.intern(name)] = value
                    for mark in spend.marks:
                        delta, total = (
                            (spend.usd, counter.spent_usd)
                            if mark.unit == "usd"
                            else spent_in(counter, spend, mark)
                        )
                        if delta and total >= mark.amount and mark.name not in counter.alerts:
                            counter.alerts[mark.name] = now_ms
                            fired.append(mark)
                if counter is not None:
                    counter.touch(spend.ref.ttl_ms(now_ms, self.key_slack), now_ms)
                    state = counter.state(spend.ref)
                else:
                    state = CounterState(spend.ref)
                outcomes.append(SettleOutcome(status, state, tuple(fired)))
        return tuple(outcomes)

    def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        trim = self._trim_before(now_ms)
        renewed: list[bool] = []
        with self._lock:
            for renewal in renewals:
                counter = self._get(self.key(renewal.ref), now_ms)
                if counter is None:
                    renewed.append(False)
                    continue
                counter.purge(now_ms, trim)  # an expired hold is tombstoned here, never revived
                deadline = counter.live.get(renewal.reservation_id)
                if deadline is None:
                    renewed.append(False)
                    continue
                if deadline < deadline_ms:
                    # next_deadline stays a valid lower bound: a deadline only moves later.
                    counter.live[renewal.reservation_id] = deadline_ms
                renewed.append(True)
        return tuple(renewed)

    def release(self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[bool, ...]:
        trim = self._trim_before(now_ms)
        dropped: list[bool] = []
        with self._lock:
            for ref in refs:
                counter = self._get(self.key(ref), now_ms)
                if counter is None:
                    dropped.append(False)
                    continue
                counter.purge(now_ms, trim)
                dropped.append(counter.drop_hold(reservation_id))
                counter.tombs.pop("x" + reservation_id, None)
                counter.touch(ref.ttl_ms(now_ms, self.key_slack), now_ms)
        return tuple(dropped)

    def _full_state(self, ref: CounterRef, counter: Counter) -> CounterState:
        base = counter.state(ref)
        return CounterState(
            ref=ref,
            spent_usd=base.spent_usd,
            held_usd=base.held_usd,
            spent_tokens=base.spent_tokens,
            held_tokens=base.held_tokens,
            active=base.active,
            models=parse_tallies({k: str(v) for k, v in counter.tallies.items()}),
            alerted=tuple(sorted(counter.alerts)),
            limit_usd=counter.limits[0],
            limit_tokens=counter.limits[1],
            spent_requests=base.spent_requests,
            held_requests=base.held_requests,
            limit_requests=counter.limits[2],
        )

    def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]:
        trim = self._trim_before(now_ms)
        states: list[CounterState] = []
        with self._lock:
            for ref in refs:
                counter = self._get(self.key(ref), now_ms)
                if counter is None:
                    states.append(CounterState(ref))
                    continue
                counter.purge(now_ms, trim)
                states.append(self._full_state(ref, counter))
        return tuple(states)

    def reset(self, refs: Sequence[CounterRef]) -> int:
        with self._lock:
            return sum(self._counters.pop(self.key(ref), None) is not None for ref in refs)

    def forget_spend(self, refs: Sequence[CounterRef], *, now_ms: int) -> int:
        trim = self._trim_before(now_ms)
        existed = 0
        with self._lock:
            for ref in refs:
                key = self.key(ref)
                counter = self._get(key, now_ms)
                if counter is None:
                    continue
                existed += 1
                counter.purge(now_ms, trim)
                if not counter.live:
                    del self._counters[key]
                    continue
                counter.spent_usd = 0
                counter.spent_tokens = 0
                counter.spent_requests = 0
                counter.alerts.clear()
                counter.tallies.clear()
        return existed

    def track_members(
        self, zsets: Sequence[str], *, top: int | None, now_ms: int
    ) -> list[list[tuple[str, float]]]:
        with self._lock:
            return self._tracks.members(zsets, top, now_ms)

    def track_values(self, keys: Sequence[str], *, now_ms: int) -> list[dict[str, int]]:
        with self._lock:
            return self._tracks.values(keys, now_ms)

    def publish_definitions(self, document: str, *, now_ms: int, expected_version: int | None = None) -> int:
        with self._lock:
            current = self.definitions_version()
            if expected_version is not None and expected_version != current:
                raise DefinitionsChangedError(expected_version, current)
            self._definitions = PublishedDefinitions(current + 1, document, now_ms)
            return current + 1

    def read_definitions(self) -> PublishedDefinitions | None:
        return self._definitions

    def definitions_version(self) -> int:
        published = self._definitions
        return published.version if published is not None else 0

    def ping(self) -> None:
        return None

    def clear(self) -> None:
        """Forget everything (tests and demos)."""
        with self._lock:
            self._counters.clear()
            self._tracks.clear()
            self._definitions = None

    def list(self, *, now_ms: int, budget: str | None = None) -> list[CounterState]:
        trim = self._trim_before(now_ms)
        states: list[CounterState] = []
        with self._lock:
            for key in list(self._counters):
                counter = self._get(key, now_ms)
                if counter is None or counter.meta is None:
                    continue
                ref = CounterRef.from_meta(counter.meta)
                if budget is not None and ref.budget != budget:
                    continue
                counter.purge(now_ms, trim)
                states.append(self._full_state(ref, counter))
        return states
