"""Redis Cluster: ``redis+cluster://`` and ``rediss+cluster://``.

Redis Cluster lets a script touch only keys of one hash slot. Each counter's keys share a hash tag, so the
cluster store groups counters by slot and runs the script once per slot, in parallel on a small thread
pool (``parallel=False`` runs them in order). A reservation is all-or-nothing across slots: when one slot
refuses or fails, the slots that granted are released again. That never lets spend past a limit; the only
cost is that a concurrent call may be refused during the few milliseconds the doomed hold exists.
Settlements and releases are idempotent per counter, so retrying one that failed half-way is safe. Each
script goes straight to the master that owns its slot; when that fails (a redirection after a slot moved,
a failover, an outage) the same call goes through ``RedisCluster``, which follows redirections and
refreshes its view of the cluster. :meth:`RedisClusterStore.settle_many` sends one script call per slot,
in parallel, each carrying the part of every settlement whose counters live there.

Circuit breakers (:mod:`bedrock_budget.stores.breaker`) are kept per master
(:mod:`.node_breakers`): a master that hangs makes the operations on its own slots fail fast while the
other masters keep serving theirs. Operations that reach no single slot (listing, resets) have none. The
eviction policy is checked on every master.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar, cast

from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

import bedrock_budget.stores.redis.eviction as eviction
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
from bedrock_budget.stores.redis.node_breakers import NodeBreakers
from bedrock_budget.stores.redis.script_calls import _KEY_MEMO_SIZE
from bedrock_budget.stores.redis.standalone import RedisStore
from bedrock_budget.stores.redis.uri import _connection_kwargs, _split_options, cluster_startup, redact

T = TypeVar("T")


class RedisClusterStore(RedisStore):
    """Redis Cluster: counters grouped by hash slot, one script call per slot (see the module docstring)."""

    schemes = ("redis+cluster", "rediss+cluster")

    def __init__(
        self,
        client: Any,
        *,
        parallel: bool = True,
        breaker: bool = True,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        **kwargs: Any,
    ) -> None:
        # One breaker per master (see ``node_breakers``) instead of the standalone store's single one.
        # Set before the base class lists the store for the health metrics, whose scrape reads it.
        self._nodes: NodeBreakers | None = None
        super().__init__(client, breaker=False, **kwargs)
        self._nodes = NodeBreakers(self._name, probe_interval, self._node_probe) if breaker else None
        if self._nodes is not None:
            self._nodes.on_close(self._recheck_policy)
        self._slot_memo: dict[CounterRef, int] = {}
        self._parallel = parallel
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> RedisClusterStore:
        from redis.cluster import ClusterNode, RedisCluster

        node: Any = ClusterNode

        clean, store, client_options = _split_options(uri, options)
        parallel = bool(client_options.pop("parallel", True))
        hosts, named = cluster_startup(clean)
        kwargs = _connection_kwargs(client_options)
        client = _LazyCluster(
            lambda: RedisCluster(startup_nodes=[node(host, port) for host, port in hosts], **kwargs, **named)
        )
        return cls(client, name=redact(uri), parallel=parallel, **store)

    def _slot(self, ref: CounterRef) -> int:
        slot = self._slot_memo.get(ref)
        if slot is None:
            slot = remember(self._slot_memo, ref, key_slot(self.key(ref).encode("utf-8")), _KEY_MEMO_SIZE)
        return slot

    def _groups(self, refs: Sequence[CounterRef]) -> list[list[int]]:
        return slots.groups(refs, self._slot)

    def _fan_out(self, calls: Sequence[Callable[[], T]], parallel: bool = True) -> list[T | BaseException]:
        """Run calls (one per slot); each result is a value or the exception it raised. ``parallel=False``
        runs them in order on this thread."""
        if len(calls) <= 1 or not (parallel and self._parallel):
            results: list[T | BaseException] = []
            for call in calls:
                try:
                    results.append(call())
                except Exception as exc:  # collected so the caller can undo the slots that succeeded
                    results.append(exc)
            return results
        # The first call runs on this thread while the pool runs the others: one hand-off fewer.
        futures: list[Future[T]] = [self._executor().submit(call) for call in calls[1:]]
        gathered: list[T | BaseException] = []
        try:
            gathered.append(calls[0]())
        except Exception as exc:
            gathered.append(exc)
        for future in futures:
            error = future.exception()
            gathered.append(error if error is not None else future.result())
        return gathered

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="bedrock-budget-slots")
            return self._pool

    def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        groups = self._groups([h.ref for h in holds])
        if len(groups) <= 1:
            return super().reserve(reservation_id, holds, now_ms=now_ms, deadline_ms=deadline_ms)
        parts = self._fan_out(
            [
                partial(self._reserve, reservation_id, [holds[i] for i in group], now_ms, deadline_ms)
                for group in groups
            ]
        )
        result, failure, undo = slots.reserve_outcome(holds, groups, parts)
        if undo:
            self._undo(reservation_id, undo, now_ms)
        if failure is not None:
            raise failure
        assert result is not None
        return result

    def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        # Straight to the master of the keys' slot (one slot per call, see _groups): RedisCluster would
        # work out the slot and node again for every command, which costs more CPU than the call itself.
        # Anything unusual (a redirection, a failover, an outage) goes the cluster client's way, which
        # follows redirections and refreshes its view of the cluster; every script is safe to run twice.
        # The master's circuit breaker, when open, refuses at once; a failure both ways opens it.
        self._gate()
        if not keys:
            return super()._eval(script, keys, args)
        runner = self._scripts[script]
        breaker = None
        try:
            cluster = self._cluster()
            node = cluster.get_node_from_key(keys[0])
            if self._nodes is not None:
                breaker = self._nodes.node(node)
                breaker.check()
            node_client = self._node_client(node)
            try:
                return node_client.evalsha(runner.sha, len(keys), *keys, *args)
            except NoScriptError:
                node_client.script_load(runner.script)
                return node_client.evalsha(runner.sha, len(keys), *keys, *args)
        except (RedisError, RedisClusterException):
            pass
        try:
            return super()._eval(script, keys, args)
        except StoreUnavailableError as exc:
            if breaker is not None:
                breaker.failed(exc.reason)
            raise

    def _cluster(self) -> Any:
        return self._client.cluster() if isinstance(self._client, _LazyCluster) else self._client

    def _node_client(self, node: Any) -> Any:
        """The connection to one master (a seam: tests point it at the wrong master)."""
        return self._cluster().get_redis_connection(node)

    def _node_probe(self, node: Any) -> Callable[[], None]:
        return partial(self._ping_node, node)

    def _ping_node(self, node: Any) -> None:
        self._cluster().get_redis_connection(node).ping()

    def _check_policy(self) -> None:
        # A master out of reach is skipped rather than failing every slot: its breaker's recovery (or the
        # next outage's) checks again.
        for server in self._servers():
            try:
                eviction.check_policies(self._name, [server], allow_eviction=self.allow_eviction)
            except (RedisConnectionError, RedisTimeoutError):
                continue
        self._policy_checked = True

    def _servers(self) -> list[Any]:
        cluster = self._cluster()
        return [cluster.get_redis_connection(node) for node in cluster.get_primaries()]

    def _undo(self, reservation_id: str, groups: Sequence[Sequence[CounterRef]], now_ms: int) -> None:
        # Best effort: a hold that cannot be released now expires at its deadline.
        self._fan_out([partial(self._release, reservation_id, group, now_ms) for group in groups])

    def _per_slot(self, items: Sequence[Any], run: Callable[[list[Any]], Sequence[T]]) -> tuple[T, ...]:
        groups = self._groups([slots.ref_of(item) for item in items])
        if len(groups) <= 1:
            return tuple(run(list(items)))
        parts = self._fan_out([partial(run, [items[i] for i in group]) for group in groups])
        for part in parts:
            if isinstance(part, BaseException):
                raise part
        return slots.merge(len(items), groups, cast(list[Sequence[T]], parts))

    def release(self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[bool, ...]:
        return self._per_slot(refs, lambda g: self._release(reservation_id, g, now_ms))

    def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        # One script call per slot, sent in parallel like every other multi-slot operation.
        if not renewals:
            return ()
        return self._per_slot(renewals, lambda g: self._renew(g, now_ms, deadline_ms))

    def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        # One script call per slot, carrying the part of every settlement whose counters (and spend ledger
        # writes, see stores.tracking) live there. A batch (the settle thread, a flush) goes slot after
        # slot: no caller waits on it, and handing slots to the pool's threads costs a batch more CPU, and
        # more GIL taken from the callers, than it saves. A single settlement's slots go in parallel.
        parts = slots.settle_parts(requests, self._slot, self.prefix, self.tombstone_retention)
        calls = [partial(self._settle_many, slots.part_requests(part), now_ms) for part in parts]
        gathered = self._fan_out(calls, parallel=len(requests) == 1)
        return slots.merge_settled(requests, parts, gathered)

    def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]:
        return self._per_slot(refs, lambda g: self._read(g, now_ms))

    def forget_spend(self, refs: Sequence[CounterRef], *, now_ms: int) -> int:
        if not refs:
            return 0
        return sum(self._per_slot(refs, lambda g: self._forget_spend(g, now_ms)))

    @property
    def breaker(self) -> Breaker | None:
        return self._nodes

    def close(self) -> None:
        if self._nodes is not None:
            self._nodes.stop()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        super().close()

    def list(self, *, now_ms: int, budget: str | None = None) -> list[CounterState]:
        bases = sorted(set(self._scan(self._list_pattern(budget))))
        states: list[CounterState] = []
        for base in bases:  # keys of different slots cannot share a script call
            for state, meta in self._read_keys([base], now_ms):
                if meta and (budget is None or state.ref.budget == budget):
                    states.append(state)
        return states


class _LazyCluster:
    """Defers connecting (RedisCluster discovers the topology in its constructor) to the first command, so
    creating a store during an outage does not fail and the outage policy decides instead."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()
        self._scripts: list[tuple[Any, str]] = []

    def _get(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def cluster(self) -> Any:
        """The ``RedisCluster`` client, connected on first use."""
        client = self._client
        return client if client is not None else self._get()

    def register_script(self, text: str) -> Any:
        # A Script only needs evalsha and script_load from its client, so binding it to this proxy connects
        # nothing. Given str, Script asks the client for an encoder to hash the text, and the only encoder
        # at hand before connecting is in redis-py's private _parsers package; given the UTF-8 bytes (what
        # that encoder would produce), it hashes and sends them as they are: the same SHA, the same script.
        from redis.commands.core import Script

        return Script(cast(Any, self), text.encode("utf-8"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
