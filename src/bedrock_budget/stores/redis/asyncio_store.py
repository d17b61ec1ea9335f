"""Standalone Redis for an event loop: ``redis.asyncio`` running the sync store's Lua scripts on the sync
store's keys (the calls are built by :mod:`.script_calls`, shared with :mod:`.standalone`), so a budget is
one budget whether sync or async processes, or both, spend from it.

Every operation is one EVALSHA awaited on the loop; nothing here blocks it. The circuit breaker is the sync
store's (:mod:`bedrock_budget.stores.breaker`): the first operation that cannot reach the server opens it,
operations then fail at once, and its probe thread pings the server *on the store's loop*
(``run_coroutine_threadsafe``), so the breaker never touches the connection from another thread. The
``maxmemory-policy`` check (:mod:`.eviction`) runs before the first operation and after an outage.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

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
)
from bedrock_budget.stores.keys import check_prefix
from bedrock_budget.stores.redis.codec import _SCRIPTS
from bedrock_budget.stores.redis.in_flight import InFlight
from bedrock_budget.stores.redis.script_calls import ScriptCalls
from bedrock_budget.stores.redis.standalone import _UNAVAILABLE
from bedrock_budget.stores.redis.uri import DEFAULT_RETRIES, _connection_kwargs, _split_options, redact

T = TypeVar("T")

#: Script calls in flight per store, and so connections (a ``max_connections`` query option sets it for a
#: store made from a URI); more calls wait their turn, in order: a thousand calls in flight are a load,
#: not an outage, and a pool that ran out would fail them as if the server were gone.
_MAX_CONNECTIONS = 100
#: How long the breaker's probe waits for the loop to answer its ping (beyond the socket timeouts).
_PROBE_WAIT = 5.0


def async_connection_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The sync store's connection options, with ``redis.asyncio``'s own retry object."""
    kwargs = _connection_kwargs(options)
    kwargs["retry"] = Retry(NoBackoff(), int(options.get("retries", DEFAULT_RETRIES)))
    return kwargs


class AsyncRedisStore(ScriptCalls):
    """Standalone Redis through ``redis.asyncio`` (see the module docstring). ``AsyncRedisStore(client)``
    wraps a ``redis.asyncio.Redis``, which the store then owns and closes."""

    def __init__(
        self,
        client: Any,
        *,
        name: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        key_slack: int = DEFAULT_KEY_SLACK,
        tombstone_retention: int = DEFAULT_TOMBSTONE_RETENTION,
        breaker: bool = True,
        probe_interval: float = breakers.DEFAULT_PROBE_INTERVAL,
        allow_eviction: bool = False,
    ) -> None:
        self.prefix = check_prefix(prefix)
        if key_slack < 0 or tombstone_retention < 0:
            raise ValueError("key_slack and tombstone_retention must not be negative")
        self.key_slack = int(key_slack)
        self.tombstone_retention = int(tombstone_retention)
        self._init_memos()
        self._client = client
        self._name = name or f"redis ({type(client).__name__})"
        self._closed = False
        self.allow_eviction = bool(allow_eviction)
        self._policy_checked = False
        #: The loop the client's connections belong to (the first one an operation ran on).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._breaker: breakers.CircuitBreaker | None = None
        if breaker:
            self._breaker = breakers.CircuitBreaker(
                self._probe, name=self._name, probe_interval=probe_interval
            )
            self._breaker.on_close(self._recheck_policy)
        self._scripts = {name: client.register_script(text) for name, text in _SCRIPTS.items()}
        breakers.watch(self)  # the store health metrics show its breaker like a sync store's
        pool = getattr(client, "connection_pool", None)
        self._max_in_flight = int(getattr(pool, "max_connections", None) or _MAX_CONNECTIONS)
        self._in_flight: InFlight | None = None
        self._setup: asyncio.Lock | None = None

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> AsyncRedisStore:
        clean, store, client_options = _split_options(uri, options)
        client_options.pop("parallel", None)
        kwargs = async_connection_kwargs(client_options)
        try:
            client = aioredis.Redis.from_url(clean, **{"max_connections": _MAX_CONNECTIONS, **kwargs})
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
        return self._breaker

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name} prefix={self.prefix!r}>"

    # -- health ---------------------------------------------------------------------------------------------

    def _servers(self) -> list[Any]:
        return [self._client]

    async def _ping_all(self) -> None:
        for server in self._servers():
            await server.ping()

    def _probe(self) -> None:
        """The breaker's probe (on its own thread): a PING sent on the store's loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise StoreUnavailableError(self._name, "its event loop is closed")
        future = asyncio.run_coroutine_threadsafe(self._ping_all(), loop)
        try:
            future.result(_PROBE_WAIT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    async def try_now(self) -> bool:
        breaker = self._breaker
        if breaker is None or breaker.state == "closed":
            return True
        try:
            await self._ping_all()
        except Exception:
            return False
        breaker.recovered()
        return True

    def evicted_keys(self) -> int | None:
        """Not read from an async store: a scrape runs off the loop and must not use its connections (the
        sync stores of the same server report it)."""
        return None

    def _recheck_policy(self) -> None:
        self._policy_checked = False

    async def _check_policy(self) -> None:
        for server in self._servers():
            eviction.judge(self._name, await _policy_of(server), allow_eviction=self.allow_eviction)
        self._policy_checked = True

    # -- plumbing -------------------------------------------------------------------------------------------

    async def _gate(self) -> None:
        if self._closed:
            raise StoreError(f"budget store {self._name} is closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self._breaker is not None:
            self._breaker.check()
        if not self._policy_checked:
            # Once, not once per call waiting for it: a thousand first calls are one check.
            async with self._setup_lock():
                if not self._policy_checked:
                    async with self._slot_in_flight():
                        await self._unavailable_trips(self._check_policy)

    async def _unavailable_trips(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            return await operation()
        except (*_UNAVAILABLE, RedisClusterException) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._failed(reason)
            raise StoreUnavailableError(self._name, reason) from exc
        except RedisError as exc:
            raise StoreError(f"budget store {self._name} failed: {type(exc).__name__}: {exc}") from exc

    def _failed(self, reason: str) -> None:
        if self._breaker is not None:
            self._breaker.failed(reason)

    async def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        await self._gate()
        async with self._slot_in_flight():
            if self._breaker is not None:
                self._breaker.check()  # an outage found while this call waited its turn fails it at once
            return await self._eval_unchecked(script, keys, args)

    def _setup_lock(self) -> asyncio.Lock:
        if self._setup is None:
            self._setup = asyncio.Lock()
        return self._setup

    def _slot_in_flight(self) -> InFlight:
        if self._in_flight is None:
            self._in_flight = InFlight(self._max_in_flight)
        return self._in_flight

    async def _eval_unchecked(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        runner = self._scripts[script]
        return await self._unavailable_trips(lambda: _evalsha(self._client, runner, keys, args))

    # -- the hot path ---------------------------------------------------------------------------------------

    async def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        if not holds:
            return ReserveResult(granted=True, checks=())
        keys, args = self._reserve_call(reservation_id, holds, now_ms, deadline_ms)
        return self._reserve_reply(holds, await self._eval("reserve", keys, args))

    async def _settle_many(
        self, requests: Sequence[SettleRequest], now_ms: int
    ) -> list[tuple[SettleOutcome, ...]]:
        keys, args = self._settle_call(requests, now_ms)
        return self._settle_reply(requests, await self._eval("settle_many", keys, args))

    async def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        live = [r for r in requests if r.spends or r.track is not None]
        try:
            settled = iter(await self._settle_many(live, now_ms) if live else ())
        except StoreError as exc:
            return [exc if r.spends or r.track is not None else () for r in requests]
        return [next(settled) if r.spends or r.track is not None else () for r in requests]

    async def _release(self, rid: str, refs: Sequence[CounterRef], now_ms: int) -> tuple[bool, ...]:
        keys, args = self._release_call(rid, refs, now_ms)
        return self._per_counter_reply(await self._eval("release", keys, args))

    async def release(
        self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int
    ) -> tuple[bool, ...]:
        if not refs:
            return ()
        return await self._release(reservation_id, refs, now_ms)

    async def _renew(self, renewals: Sequence[Renewal], now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        (keys, args), order = self._renew_call(renewals, now_ms, deadline_ms)
        return self._renew_reply(len(renewals), order, await self._eval("renew", keys, args))

    async def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        if not renewals:
            return ()
        return await self._renew(renewals, now_ms, deadline_ms)

    async def _read(self, refs: Sequence[CounterRef], now_ms: int) -> tuple[CounterState, ...]:
        keys = [k for ref in refs for k in self._keys(ref)]
        found = self._read_reply(await self._eval("read", keys, [now_ms, self._trim(now_ms)]))
        return tuple(replace(state, ref=ref) for (state, _), ref in zip(found, refs, strict=True))

    async def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]:
        if not refs:
            return ()
        return await self._read(refs, now_ms)

    async def ping(self) -> None:
        await self._gate()
        await self._unavailable_trips(self._ping_all)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        breakers.unwatch(self)
        if self._breaker is not None:
            self._breaker.stop()
        await self._client.aclose()


async def _evalsha(client: Any, runner: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
    # What redis-py's AsyncScript does, without its per-call encoder lookup: EVALSHA, and on a server that
    # does not know the script yet (a restart, a failover, SCRIPT FLUSH), load it and try again.
    try:
        return await client.evalsha(runner.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(runner.script)
        return await client.evalsha(runner.sha, len(keys), *keys, *args)


async def _policy_of(client: Any) -> str | None:
    """``eviction.policy_of`` awaited: ``CONFIG GET``, else ``INFO memory``; ``None`` when neither is
    allowed."""
    from redis.exceptions import ResponseError

    try:
        reply = await client.config_get("maxmemory-policy")
        value = reply.get("maxmemory-policy") if isinstance(reply, dict) else None
        if value is not None:
            return _text(value)
    except ResponseError:
        pass
    try:
        info = await client.info("memory")
    except ResponseError:
        return None
    value = info.get("maxmemory_policy") if isinstance(info, dict) else None
    return None if value is None else _text(value)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["AsyncRedisStore", "async_connection_kwargs"]
