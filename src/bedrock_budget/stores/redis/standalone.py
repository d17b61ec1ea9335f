"""Standalone Redis: ``redis://``, ``rediss://`` (TLS) and ``unix://`` (also Valkey and ElastiCache).

Every operation is one Lua script loaded once per client and run with EVALSHA through redis-py's ``Script``,
so a reservation against any number of budgets is one round trip. :meth:`RedisStore.settle_many` settles a
batch of reservations with one script call, with the same per-counter rules as a single settle.

Every operation passes a circuit breaker (:mod:`bedrock_budget.stores.breaker`; ``breaker=False`` to go
without): once the server stops answering, operations fail at once until a background probe finds it back.
Before its first operation, and again after an outage, the store refuses a server whose
``maxmemory-policy`` may evict budget counters (:mod:`.eviction`; ``allow_eviction=True`` to accept one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar

import redis
from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

import bedrock_budget.stores.redis.eviction as eviction
from bedrock_budget._memo import remember
from bedrock_budget.errors import ConfigurationError, StoreError, StoreUnavailableError
from bedrock_budget.stores import breaker as breakers
from bedrock_budget.stores.base import (
    DEFAULT_KEY_SLACK,
    DEFAULT_PREFIX,
    DEFAULT_TOMBSTONE_RETENTION,
    Check,
    CounterRef,
    CounterState,
    Hold,
    Mark,
    Renewal,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
    Store,
    parse_tallies,
    settle_status,
    tally_items,
)
from bedrock_budget.stores.keys import encode_part
from bedrock_budget.stores.redis.codec import _PLACEHOLDER, _SCRIPTS, _int, _limit, _row, _str
from bedrock_budget.stores.redis.tracking import TrackReads, track_ops
from bedrock_budget.stores.redis.uri import _connection_kwargs, _split_options, redact
from bedrock_budget.stores.tracking import TrackWrite

if TYPE_CHECKING:
    from redis.commands.core import Script

_KEY_MEMO_SIZE: Final = 4096
_UNAVAILABLE: Final = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
)

T = TypeVar("T")


class RedisStore(TrackReads, Store):
    """Standalone Redis (and Valkey, ElastiCache, Sentinel-managed masters).

    ``RedisStore(client)`` wraps an existing ``redis.Redis`` (or compatible, e.g. fakeredis) client, which
    the store then owns and closes; :meth:`from_uri` builds one with bounded timeouts so an outage is
    detected in about ``connect_timeout`` seconds instead of hanging the caller.
    """

    schemes: tuple[str, ...] = ("redis", "rediss", "unix")
    batch_tracking = True

    def __init__(
        self,
        client: Any,
        *,
        name: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        key_slack: int = DEFAULT_KEY_SLACK,
        tombstone_retention: int = DEFAULT_TOMBSTONE_RETENTION,
        closers: Sequence[Callable[[], None]] = (),
        breaker: bool = True,
        probe_interval: float = breakers.DEFAULT_PROBE_INTERVAL,
        allow_eviction: bool = False,
    ) -> None:
        super().__init__(prefix=prefix, key_slack=key_slack, tombstone_retention=tombstone_retention)
        self._client = client
        self._name = name or f"redis ({type(client).__name__})"
        self._closers = list(closers)
        self._closed = False
        #: Whether an evicting ``maxmemory-policy`` is accepted (see :mod:`.eviction`).
        self.allow_eviction = bool(allow_eviction)
        self._policy_checked = False
        self._breaker: breakers.CircuitBreaker | None = None
        if breaker:
            self._breaker = breakers.CircuitBreaker(
                self._probe, name=self._name, probe_interval=probe_interval
            )
            self._breaker.on_close(self._recheck_policy)
        breakers.watch(self)
        self._scripts: dict[str, Script] = {k: client.register_script(v) for k, v in _SCRIPTS.items()}
        # Every call of a window names the same counters: build their key names once (bounded: windows
        # roll over and per-user scopes come and go).
        self._key_memo: dict[CounterRef, tuple[str, str, str]] = {}
        self._reserve_memo: dict[tuple[object, ...], tuple[tuple[str, str, str], str]] = {}

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> RedisStore:
        clean, store, client_options = _split_options(uri, options)
        client_options.pop("parallel", None)
        kwargs = _connection_kwargs(client_options)
        try:
            client = redis.Redis.from_url(clean, **kwargs)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"invalid Redis URI {redact(uri)!r}: {exc}") from exc
        return cls(client, name=redact(uri), **store)

    @property
    def name(self) -> str:
        return self._name

    @property
    def client(self) -> Any:
        return self._client

    @property
    def breaker(self) -> breakers.Breaker | None:
        """The store's circuit breaker (``None`` when made with ``breaker=False``)."""
        return self._breaker

    # -- health ---------------------------------------------------------------------------------------------

    def _servers(self) -> list[Any]:
        """A client for each server holding budget data (the one server here; each master on a cluster)."""
        return [self._client]

    def _probe(self) -> None:
        """The breaker's probe: raises unless every server answers a PING."""
        for server in self._servers():
            server.ping()

    def _recheck_policy(self) -> None:
        # After an outage the server may be another one (a failover) or restarted with another config.
        self._policy_checked = False

    def _check_policy(self) -> None:
        eviction.check_policies(self._name, self._servers(), allow_eviction=self.allow_eviction)
        self._policy_checked = True

    def evicted_keys(self) -> int | None:
        """Keys the server(s) evicted since they started (``INFO stats``); ``None`` when not readable now
        (the circuit is open, or the server does not answer)."""
        if self._closed or (self._breaker is not None and self._breaker.state != "closed"):
            return None
        try:
            return eviction.evicted_keys(self._servers())
        except (RedisError, RedisClusterException, ValueError):
            return None

    # -- plumbing -----------------------------------------------------------------------------------------

    def _gate(self) -> None:
        """Refuse at once when closed or while the circuit is open; check the eviction policy first time."""
        if self._closed:
            raise StoreError(f"budget store {self._name} is closed")
        if self._breaker is not None:
            self._breaker.check()
        if not self._policy_checked:
            self._unavailable_trips(self._check_policy)

    def _run(self, operation: Callable[[], T]) -> T:
        self._gate()
        return self._unavailable_trips(operation)

    def _unavailable_trips(self, operation: Callable[[], T]) -> T:
        """Run ``operation``, turning redis-py's errors into ours; a store out of reach opens the circuit."""
        try:
            return operation()
        except (*_UNAVAILABLE, RedisClusterException) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if self._breaker is not None:
                self._breaker.failed(reason)
            raise StoreUnavailableError(self._name, reason) from exc
        except RedisError as exc:
            raise StoreError(f"budget store {self._name} failed: {type(exc).__name__}: {exc}") from exc

    def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        runner = self._scripts[script]
        return self._run(lambda: runner(keys=list(keys), args=list(args)))

    def _keys(self, ref: CounterRef) -> tuple[str, str, str]:
        keys = self._key_memo.get(ref)
        if keys is None:
            base = self.key(ref)
            keys = remember(self._key_memo, ref, (f"{base}:h", f"{base}:z", f"{base}:t"), _KEY_MEMO_SIZE)
        return keys

    def _trim(self, now_ms: int) -> int:
        return now_ms - self.tombstone_retention * 1000

    # -- one script call (one slot on a cluster) ----------------------------------------------------------

    def _reserve(self, rid: str, holds: Sequence[Hold], now_ms: int, deadline_ms: int) -> ReserveResult:
        # One JSON argument and one bulk-string reply (see reserve.lua): a fraction of what redis-py
        # costs to pack separate arguments and parse a nested reply. Each counter's part is assembled from
        # pieces built once per counter and limits; only the amounts and the expiry change per call.
        keys: list[str] = []
        parts: list[str] = []
        slack = self.key_slack
        for hold in holds:
            counter_keys, fixed = self._reserve_pieces(hold)
            keys.extend(counter_keys)
            charge = 1 if hold.charge_on_expiry else 0
            parts.append(f'{fixed},"{hold.usd}","{hold.tokens}","{hold.ref.ttl_ms(now_ms, slack)}",{charge}]')
        payload = "[" + ",".join(parts) + "]"
        head, *lines = _str(self._eval("reserve", keys, [now_ms, deadline_ms, rid, payload])).split("\n")
        granted, repeated = head.split()
        checks: list[Check] = []
        for hold, line in zip(holds, lines, strict=True):
            spent_usd, held_usd, spent_tok, held_tok, live, refused_usd, refused_tok, epoch, *fired = (
                line.split()
            )
            state = CounterState(
                ref=hold.ref,
                spent_usd=int(spent_usd),
                held_usd=int(held_usd),
                spent_tokens=int(spent_tok),
                held_tokens=int(held_tok),
                active=int(live),
            )
            checks.append(
                Check(
                    state,
                    refused_usd=refused_usd == "1",
                    refused_tokens=refused_tok == "1",
                    fired=tuple(m for m in hold.refusal_marks if m.name in fired) if fired else (),
                    epoch=None if epoch == "-" else epoch,
                )
            )
        return ReserveResult(granted=granted == "1", checks=tuple(checks), repeated=repeated == "1")

    def _reserve_pieces(self, hold: Hold) -> tuple[tuple[str, str, str], str]:
        """A counter's keys and the fixed start of its part of the reserve request (an open JSON array)."""
        memo_key = (hold.ref, hold.limit_usd, hold.limit_tokens, hold.enforce, hold.refusal_marks)
        pieces = self._reserve_memo.get(memo_key)
        if pieces is None:
            marks = {mark.unit: mark.name for mark in hold.refusal_marks}
            fixed = [
                "" if hold.limit_usd is None else str(hold.limit_usd),
                "" if hold.limit_tokens is None else str(hold.limit_tokens),
                1 if hold.enforce else 0,
                hold.ref.meta(),
                marks.get("usd", ""),
                marks.get("tokens", ""),
            ]
            pieces = (self._keys(hold.ref), json.dumps(fixed, separators=(",", ":"))[:-1])
            remember(self._reserve_memo, memo_key, pieces, _KEY_MEMO_SIZE)
        return pieces

    def _settle_many(
        self,
        requests: Sequence[SettleRequest],
        now_ms: int,
        tracks: Sequence[Sequence[TrackWrite]] | None = None,
    ) -> list[tuple[SettleOutcome, ...]]:
        # One JSON argument for the whole batch (see settle_many.lua); each distinct counter (with its
        # thresholds) is listed once and spends refer to it by 1-based index. Amounts go as strings.
        # ``tracks``: each request's spend-ledger writes (a cluster slot's part), by default all of them.
        index: dict[tuple[CounterRef, tuple[Mark, ...]], int] = {}
        keys: list[str] = []
        counters: list[list[object]] = []
        settlements: list[list[object]] = []
        for request in requests:
            spends = request.spends
            parts: list[list[object]] = []
            for spend in spends:
                ref = spend.ref
                slot = index.get((ref, spend.marks))
                if slot is None:
                    slot = index[(ref, spend.marks)] = len(index) + 1
                    keys.extend(self._keys(ref))
                    thresholds = [
                        [m.name, "u" if m.unit == "usd" else "t", str(m.amount)] for m in spend.marks
                    ]
                    counters.append([str(ref.ttl_ms(now_ms, self.key_slack)), ref.meta(), thresholds])
                parts.append([slot, str(spend.usd), str(spend.tokens), spend.epoch or ""])
            settlements.append(
                [
                    request.reservation_id,
                    "c" if request.charge else "s",
                    [[field, str(value)] for field, value in tally_items(request.tallies)],
                    parts,
                ]
            )
        payload: dict[str, object] = {"c": counters, "s": settlements}
        if tracks is not None or any(r.track is not None for r in requests):
            payload["w"], payload["t"] = track_ops(
                self.prefix, requests, keys, self.tombstone_retention, tracks
            )
        batch = json.dumps(payload, separators=(",", ":"))
        rows = iter(self._eval("settle_many", keys, [now_ms, self._trim(now_ms), batch]))
        results: list[tuple[SettleOutcome, ...]] = []
        for request in requests:
            outcomes: list[SettleOutcome] = []
            for spend in request.spends:
                status, spent_usd, held_usd, spent_tokens, held_tokens, live, *fired = _str(
                    next(rows)
                ).split()
                state = CounterState(
                    ref=spend.ref,
                    spent_usd=int(spent_usd),
                    held_usd=int(held_usd),
                    spent_tokens=int(spent_tokens),
                    held_tokens=int(held_tokens),
                    active=int(live),
                )
                reached = tuple(m for m in spend.marks if m.name in fired) if fired else ()
                outcomes.append(SettleOutcome(settle_status(int(status)), state, reached))
            results.append(tuple(outcomes))
        return results

    def _per_counter(
        self, script: str, refs: Sequence[CounterRef], now_ms: int, args: Sequence[object]
    ) -> tuple[bool, ...]:
        """Run a script that takes each counter's three keys, ``args`` and then each counter's TTL, and
        answers 1 or 0 per counter."""
        keys: list[str] = []
        for ref in refs:
            keys.extend(self._keys(ref))
        ttls = [ref.ttl_ms(now_ms, self.key_slack) for ref in refs]
        return tuple(_int(x) == 1 for x in self._eval(script, keys, [*args, *ttls]))

    def _renew(self, renewals: Sequence[Renewal], now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        # Each counter once, with the ids to renew there; the reply comes back in that grouped order.
        counters: dict[CounterRef, list[int]] = {}
        for position, renewal in enumerate(renewals):
            counters.setdefault(renewal.ref, []).append(position)
        keys: list[str] = []
        request: list[list[object]] = []
        order: list[int] = []
        for ref, positions in counters.items():
            keys.extend(self._keys(ref))
            request.append(
                [str(ref.ttl_ms(now_ms, self.key_slack)), [renewals[p].reservation_id for p in positions]]
            )
            order.extend(positions)
        payload = json.dumps(request, separators=(",", ":"))
        reply = _str(self._eval("renew", keys, [now_ms, deadline_ms, payload]))
        renewed = [False] * len(renewals)
        for position, flag in zip(order, reply, strict=True):
            renewed[position] = flag == "1"
        return tuple(renewed)

    def _release(self, rid: str, refs: Sequence[CounterRef], now_ms: int) -> tuple[bool, ...]:
        return self._per_counter("release", refs, now_ms, [now_ms, rid, self._trim(now_ms)])

    def _forget_spend(self, refs: Sequence[CounterRef], now_ms: int) -> tuple[bool, ...]:
        return self._per_counter("forget_spend", refs, now_ms, [now_ms, self._trim(now_ms)])

    def _read_keys(self, bases: Sequence[str], now_ms: int) -> list[tuple[CounterState, str]]:
        keys = [f"{b}:{s}" for b in bases for s in ("h", "z", "t")]
        raw = self._eval("read", keys, [now_ms, self._trim(now_ms)])
        found: list[tuple[CounterState, str]] = []
        for row, meta, extra in raw:
            pairs = [(_str(extra[i]), _str(extra[i + 1])) for i in range(0, len(extra), 2)]
            meta_text = _str(meta)
            state = replace(
                _row(CounterRef.from_meta(meta_text) if meta_text else _PLACEHOLDER, row),
                models=parse_tallies(pairs),
                alerted=tuple(sorted(k[2:] for k, _ in pairs if k.startswith("a:"))),
                limit_usd=_limit(pairs, "lu"),
                limit_tokens=_limit(pairs, "lt"),
            )
            found.append((state, meta_text))
        return found

    def _read(self, refs: Sequence[CounterRef], now_ms: int) -> tuple[CounterState, ...]:
        found = self._read_keys([self.key(r) for r in refs], now_ms)
        return tuple(replace(state, ref=ref) for (state, _), ref in zip(found, refs, strict=True))

    # -- the Store interface --------------------------------------------------------------------------------

    def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        if not holds:
            return ReserveResult(granted=True, checks=())
        return self._reserve(reservation_id, holds, now_ms, deadline_ms)

    def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        live = [r for r in requests if r.spends or r.track is not None]
        try:
            settled = iter(self._settle_many(live, now_ms) if live else ())
        except StoreError as exc:
            return [exc if r.spends or r.track is not None else () for r in requests]
        return [next(settled) if r.spends or r.track is not None else () for r in requests]

    def release(self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[bool, ...]:
        if not refs:
            return ()
        return self._release(reservation_id, refs, now_ms)

    def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        if not renewals:
            return ()
        return self._renew(renewals, now_ms, deadline_ms)

    def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]:
        if not refs:
            return ()
        return self._read(refs, now_ms)

    def reset(self, refs: Sequence[CounterRef]) -> int:
        def delete(keys: Sequence[str]) -> int:
            return int(self._client.delete(*keys))

        return sum(1 for ref in refs if self._run(partial(delete, self._keys(ref))))

    def forget_spend(self, refs: Sequence[CounterRef], *, now_ms: int) -> int:
        if not refs:
            return 0
        return sum(self._forget_spend(refs, now_ms))

    def _scan(self, pattern: str) -> Iterator[str]:
        for key in self._run(lambda: list(self._client.scan_iter(match=pattern, count=500))):
            yield _str(key)[:-2]

    def _list_pattern(self, budget: str | None) -> str:
        if budget is None:
            return f"{self.prefix}{{*}}:h"
        return f"{self.prefix}{{{encode_part(budget)}|*}}:h"

    def ping(self) -> None:
        self._run(lambda: self._client.ping())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._breaker is not None:
            self._breaker.stop()
        try:
            self._client.close()
        finally:
            for closer in self._closers:
                closer()

    def list(self, *, now_ms: int, budget: str | None = None) -> list[CounterState]:
        bases = sorted(set(self._scan(self._list_pattern(budget))))
        states: list[CounterState] = []
        for start in range(0, len(bases), 100):
            for state, meta in self._read_keys(bases[start : start + 100], now_ms):
                if meta and (budget is None or state.ref.budget == budget):
                    states.append(state)
        return states
