"""Redis Cluster for an event loop: ``redis.asyncio.cluster.RedisCluster`` running the sync cluster store's
scripts on its keys, slot by slot (:mod:`.slots`, shared with :mod:`.cluster`).

As in the sync store, a script touches the keys of one hash slot, so every operation is split per slot and
the slots' script calls run concurrently (gathered on the loop instead of a thread pool). A reservation
is all-or-nothing across slots: when one slot refuses or fails, the slots that granted are released again,
which never lets spend past a limit. The cluster client routes each call to the master of its slot and
follows redirections. One circuit breaker per master (:mod:`.node_breakers`), probed on the store's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.crc import key_slot

import bedrock_budget.stores.redis.slots as slots
from bedrock_budget._memo import remember
from bedrock_budget.errors import StoreError, StoreUnavailableError
from bedrock_budget.stores.base import (
    CounterRef,
    CounterState,
    Hold,
    Renewal,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
)
from bedrock_budget.stores.breaker import DEFAULT_PROBE_INTERVAL, Breaker
from bedrock_budget.stores.redis.asyncio_store import (
    _MAX_CONNECTIONS,
    _PROBE_WAIT,
    AsyncRedisStore,
    async_connection_kwargs,
)
from bedrock_budget.stores.redis.node_breakers import NodeBreakers
from bedrock_budget.stores.redis.script_calls import _KEY_MEMO_SIZE
from bedrock_budget.stores.redis.uri import _split_options, cluster_startup, redact

T = TypeVar("T")


class AsyncRedisClusterStore(AsyncRedisStore):
    """Redis Cluster through ``redis.asyncio`` (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        *,
        breaker: bool = True,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        **kwargs: Any,
    ) -> None:
        # Set before the base class lists the store for the health metrics, whose scrape reads it.
        self._nodes: NodeBreakers | None = None
        super().__init__(client, breaker=False, **kwargs)
        self._nodes = NodeBreakers(self._name, probe_interval, self._node_probe) if breaker else None
        if self._nodes is not None:
            self._nodes.on_close(self._recheck_policy)
        self._slot_memo: dict[CounterRef, int] = {}
        self._ready = False
        # The cluster client fails a command when a node's pool is full: at most this many script calls
        # are in flight, so a node never sees more; the others wait their turn.
        self._max_in_flight = int(getattr(client, "max_connections", None) or _MAX_CONNECTIONS)

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> AsyncRedisClusterStore:
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        clean, store, client_options = _split_options(uri, options)
        client_options.pop("parallel", None)
        hosts, named = cluster_startup(clean)
        kwargs = async_connection_kwargs(client_options)
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in hosts], **kwargs, **named
        )
        return cls(client, name=redact(uri), **store)

    @property
    def breaker(self) -> Breaker | None:
        return self._nodes

    # -- slots ----------------------------------------------------------------------------------------------

    def _slot(self, ref: CounterRef) -> int:
        slot = self._slot_memo.get(ref)
        if slot is None:
            slot = remember(self._slot_memo, ref, key_slot(self.key(ref).encode("utf-8")), _KEY_MEMO_SIZE)
        return slot

    async def _gather(self, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T | BaseException]:
        """Run one call per slot concurrently; each result is a value or the exception it raised."""
        if len(calls) == 1:
            try:
                return [await calls[0]()]
            except Exception as exc:
                return [exc]
        results = await asyncio.gather(*(call() for call in calls), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result  # a cancellation is not a slot's answer
        return list(results)

    async def _per_slot(
        self, items: Sequence[Any], run: Callable[[list[Any]], Awaitable[Sequence[T]]]
    ) -> tuple[T, ...]:
        groups = slots.groups([slots.ref_of(item) for item in items], self._slot)
        if len(groups) <= 1:
            return tuple(await run(list(items)))
        parts = await self._gather([_bind(run, [items[i] for i in group]) for group in groups])
        done: list[Sequence[T]] = []
        for part in parts:
            if isinstance(part, BaseException):
                raise part
            done.append(part)
        return slots.merge(len(items), groups, done)

    # -- health ---------------------------------------------------------------------------------------------

    async def _ping_all(self) -> None:
        await self._initialize()
        for node in self._client.get_primaries():
            await self._client.execute_command("PING", target_nodes=node)

    async def _check_policy(self) -> None:
        import bedrock_budget.stores.redis.eviction as eviction

        await self._initialize()  # called with the setup lock held
        for node in self._client.get_primaries():
            try:
                reply = await self._client.config_get("maxmemory-policy", target_nodes=node)
            except Exception:
                continue  # a master out of reach is checked again after its recovery
            value = reply.get("maxmemory-policy") if isinstance(reply, dict) else None
            policy = None if value is None else (value.decode() if isinstance(value, bytes) else str(value))
            eviction.judge(self._name, policy, allow_eviction=self.allow_eviction)
        self._policy_checked = True

    async def _ensure_ready(self) -> None:
        if not self._ready:
            async with self._setup_lock():
                await self._initialize()

    async def _initialize(self) -> None:
        # Learns the slots' masters (once; the cluster client refreshes them on redirections itself).
        if not self._ready:
            await self._client.initialize()
            self._ready = True

    async def try_now(self) -> bool:
        nodes = self._nodes
        if nodes is None or nodes.state == "closed":
            return True
        try:
            await self._ping_all()
        except Exception:
            return False
        for breaker in list(nodes._nodes.values()):
            breaker.recovered()
        return True

    def _node_probe(self, node: Any) -> Callable[[], None]:
        def probe() -> None:
            loop = self._loop
            if loop is None or loop.is_closed():
                raise StoreUnavailableError(self._name, "its event loop is closed")
            ping = self._client.execute_command("PING", target_nodes=node)
            asyncio.run_coroutine_threadsafe(ping, loop).result(_PROBE_WAIT)

        return probe

    async def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        # The cluster client sends the call to the master of the keys' slot (one slot per call) and follows
        # redirections; the master's breaker, when open, refuses at once, and a failure opens it.
        await self._gate()
        await self._unavailable_trips(self._ensure_ready)
        breaker = None
        try:
            async with self._slot_in_flight():
                if self._nodes is not None and keys:
                    node = self._client.get_node_from_key(keys[0])
                    breaker = self._nodes.node(node)
                    breaker.check()
                return await super()._eval_unchecked(script, keys, args)
        except StoreUnavailableError as exc:
            if breaker is not None:
                breaker.failed(exc.reason)
            raise

    def _failed(self, reason: str) -> None:
        pass  # the master's breaker is told in _eval

    # -- operations -----------------------------------------------------------------------------------------

    async def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        groups = slots.groups([h.ref for h in holds], self._slot)
        if len(groups) <= 1:
            return await super().reserve(reservation_id, holds, now_ms=now_ms, deadline_ms=deadline_ms)
        parts = await self._gather(
            [
                _bind(self._reserve_group, reservation_id, [holds[i] for i in group], now_ms, deadline_ms)
                for group in groups
            ]
        )
        result, failure, undo = slots.reserve_outcome(holds, groups, parts)
        if undo:
            # Best effort: a hold that cannot be released now expires at its deadline.
            await self._gather([_bind(self._release, reservation_id, group, now_ms) for group in undo])
        if failure is not None:
            raise failure
        assert result is not None
        return result

    async def _reserve_group(
        self, rid: str, holds: Sequence[Hold], now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        keys, args = self._reserve_call(rid, holds, now_ms, deadline_ms)
        return self._reserve_reply(holds, await self._eval("reserve", keys, args))

    async def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        parts = slots.settle_parts(requests, self._slot, self.prefix, self.tombstone_retention)
        gathered = await self._gather(
            [_bind(self._settle_many, slots.part_requests(part), now_ms) for part in parts]
        )
        return slots.merge_settled(requests, parts, gathered)

    async def release(
        self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int
    ) -> tuple[bool, ...]:
        return await self._per_slot(refs, lambda g: self._release(reservation_id, g, now_ms))

    async def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        if not renewals:
            return ()
        return await self._per_slot(renewals, lambda g: self._renew(g, now_ms, deadline_ms))

    async def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]:
        return await self._per_slot(refs, lambda g: self._read(g, now_ms))

    async def aclose(self) -> None:
        if self._nodes is not None:
            self._nodes.stop()
        await super().aclose()


def _bind(function: Callable[..., Awaitable[T]], *args: Any) -> Callable[[], Awaitable[T]]:
    def call() -> Awaitable[T]:
        return function(*args)

    return call
