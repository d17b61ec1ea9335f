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
from bedrock_budget.errors import ConfigurationError, StoreError, StoreUnavailableError
from bedrock_budget.stores import breaker as breakers
from bedrock_budget.stores.base import (
    DEFAULT_KEY_SLACK,
    DEFAULT_PREFIX,
    DEFAULT_TOMBSTONE_RETENTION,
    CounterRef,
    CounterState,
    Hold,
    Renewal,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
    Store,
)
from bedrock_budget.stores.keys import encode_part
from bedrock_budget.stores.redis.codec import _SCRIPTS, _str
from bedrock_budget.stores.redis.definitions import RedisDefinitions
from bedrock_budget.stores.redis.script_calls import ScriptCalls
from bedrock_budget.stores.redis.tracking import TrackReads
from bedrock_budget.stores.redis.uri import _connection_kwargs, _split_options, redact

if TYPE_CHECKING:
    from redis.commands.core import Script

_UNAVAILABLE: Final = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
)

T = TypeVar("T")


class RedisStore(ScriptCalls, RedisDefinitions, TrackReads, Store):
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
        self._scripts: dict[str, Script] = {k: client.register_script(v) for k, v in _SCRIPTS.items()}
        self._init_memos()
        breakers.watch(self)  # last: a store whose construction failed is never listed

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
        # ``breaker``, not ``_breaker``: a Cluster store's is its masters' breakers, and a master out of
        # reach would hold the scrape for a socket timeout.
        breaker = self.breaker
        if self._closed or (breaker is not None and breaker.state != "closed"):
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

    # -- one script call (one slot on a cluster): arguments and replies in ``script_calls`` ----------------

    def _reserve(self, rid: str, holds: Sequence[Hold], now_ms: int, deadline_ms: int) -> ReserveResult:
        keys, args = self._reserve_call(rid, holds, now_ms, deadline_ms)
        return self._reserve_reply(holds, self._eval("reserve", keys, args))

    def _settle_many(self, requests: Sequence[SettleRequest], now_ms: int) -> list[tuple[SettleOutcome, ...]]:
        keys, args = self._settle_call(requests, now_ms)
        return self._settle_reply(requests, self._eval("settle_many", keys, args))

    def _per_counter(
        self, script: str, refs: Sequence[CounterRef], now_ms: int, args: Sequence[object]
    ) -> tuple[bool, ...]:
        """Run a script that takes each counter's three keys, ``args`` and then each counter's TTL, and
        answers 1 or 0 per counter."""
        keys, call_args = self._per_counter_call(refs, now_ms, args)
        return self._per_counter_reply(self._eval(script, keys, call_args))

    def _renew(self, renewals: Sequence[Renewal], now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        (keys, args), order = self._renew_call(renewals, now_ms, deadline_ms)
        return self._renew_reply(len(renewals), order, self._eval("renew", keys, args))

    def _release(self, rid: str, refs: Sequence[CounterRef], now_ms: int) -> tuple[bool, ...]:
        keys, args = self._release_call(rid, refs, now_ms)
        return self._per_counter_reply(self._eval("release", keys, args))

    def _forget_spend(self, refs: Sequence[CounterRef], now_ms: int) -> tuple[bool, ...]:
        return self._per_counter("forget_spend", refs, now_ms, [now_ms, self._trim(now_ms)])

    def _read_keys(self, bases: Sequence[str], now_ms: int) -> list[tuple[CounterState, str]]:
        keys = [f"{b}:{s}" for b in bases for s in ("h", "z", "t")]
        return self._read_reply(self._eval("read", keys, [now_ms, self._trim(now_ms)]))

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
        breakers.unwatch(self)
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
