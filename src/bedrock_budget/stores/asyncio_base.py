"""The store contract for an event loop: the operations of :class:`~bedrock_budget.stores.base.Store` that
the budget hot path uses, awaited.

- ``redis://`` / ``rediss://`` / ``unix://`` and ``redis+cluster://`` URIs get native ``redis.asyncio``
  stores (:mod:`bedrock_budget.stores.redis.asyncio_store`, :mod:`~.redis.asyncio_cluster`) running the
  same Lua scripts on the same keys as the sync stores, so sync and async processes share one budget.
- The memory store is used directly (:class:`DirectStore`): its operations are in-process dictionary
  work under a lock held for microseconds, so running them on the loop costs less than handing them off.
- Any other sync store (Sentinel, a store of your own) runs in worker threads (:class:`ThreadedStore`):
  slower per call, but the loop never waits on its I/O.

Semantics are those of the sync contract, operation by operation (``stores.base``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from bedrock_budget.errors import StoreError
from bedrock_budget.stores.base import (
    CounterRef,
    CounterState,
    Hold,
    Renewal,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
    Store,
)
from bedrock_budget.stores.breaker import Breaker

__all__ = ["AsyncStore", "DirectStore", "ThreadedStore", "as_async_store"]


@runtime_checkable
class AsyncStore(Protocol):
    """What the async ledger awaits (see ``stores.base`` for each operation's rules)."""

    prefix: str

    @property
    def name(self) -> str: ...

    @property
    def breaker(self) -> Breaker | None: ...

    async def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult: ...

    async def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]: ...

    async def release(
        self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int
    ) -> tuple[bool, ...]: ...

    async def renew(
        self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int
    ) -> tuple[bool, ...]: ...

    async def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]: ...

    async def try_now(self) -> bool:
        """Ping the store when its circuit is not closed, closing it on an answer; True when closed."""
        ...

    async def aclose(self) -> None: ...


class DirectStore:
    """A sync store whose operations are fast enough to run on the loop itself (the memory store)."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        self.prefix = store.prefix

    @property
    def name(self) -> str:
        return self.sync.name

    @property
    def breaker(self) -> Breaker | None:
        breaker: Breaker | None = getattr(self.sync, "breaker", None)
        return breaker

    async def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.sync, method)(*args, **kwargs)

    async def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        result: ReserveResult = await self._run(
            "reserve", reservation_id, holds, now_ms=now_ms, deadline_ms=deadline_ms
        )
        return result

    async def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        settled: list[tuple[SettleOutcome, ...] | StoreError] = await self._run(
            "settle_many", requests, now_ms=now_ms
        )
        return settled

    async def release(
        self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int
    ) -> tuple[bool, ...]:
        released: tuple[bool, ...] = await self._run("release", reservation_id, refs, now_ms=now_ms)
        return released

    async def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        renewed: tuple[bool, ...] = await self._run("renew", renewals, now_ms=now_ms, deadline_ms=deadline_ms)
        return renewed

    async def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]:
        states: tuple[CounterState, ...] = await self._run("read", refs, now_ms=now_ms)
        return states

    async def try_now(self) -> bool:
        breaker = self.breaker
        if breaker is None or breaker.state == "closed":
            return True
        result: bool = await self._run_blocking(breaker.try_now)
        return result

    async def _run_blocking(self, function: Any) -> Any:
        return await asyncio.to_thread(function)

    async def aclose(self) -> None:
        await self._run_blocking(self.sync.close)


class ThreadedStore(DirectStore):
    """A sync store whose operations may wait on I/O: each runs in a worker thread."""

    async def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.sync, method), *args, **kwargs)


def as_async_store(store: AsyncStore | Store | str, **options: Any) -> tuple[AsyncStore, bool]:
    """The async store for a URI, an async store or a sync store; and whether the caller made it (and so
    closes it). ``options`` go to a store made from a URI."""
    if isinstance(store, str):
        from bedrock_budget.stores import configuration_errors, from_uri

        scheme = store.partition("://")[0].lower()
        if scheme in ("redis", "rediss", "unix"):
            from bedrock_budget.stores.redis.asyncio_store import AsyncRedisStore

            with configuration_errors(scheme):  # a bad prefix or option, as from_uri reports it
                return AsyncRedisStore.from_uri(store, **options), True
        if scheme in ("redis+cluster", "rediss+cluster"):
            from bedrock_budget.stores.redis.asyncio_cluster import AsyncRedisClusterStore

            with configuration_errors(scheme):
                return AsyncRedisClusterStore.from_uri(store, **options), True

        return as_async_store(from_uri(store, **options))[0], True
    if isinstance(store, Store):
        from bedrock_budget.stores.memory import MemoryStore

        return (DirectStore(store) if isinstance(store, MemoryStore) else ThreadedStore(store)), False
    return store, False
