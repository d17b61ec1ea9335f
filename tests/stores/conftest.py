"""Backends for the store contract suite: memory, fakeredis (Lua), a real Redis on 127.0.0.1:6379 and a
3-master Redis Cluster (started by the shared fixtures in tests/service_fixtures.py).

Outside CI a missing Redis or redis-server binary skips the tests that need it; with ``CI=true`` it fails
them, so CI can never pass by skipping.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bedrock_budget.stores import Store, from_uri
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.stores.redis import RedisStore
from service_fixtures import (
    REDIS_HOST,
    REDIS_PORT,
    RedisServer,
    free_port,
    port_open,
    unavailable,
    wait_until,
)

__all__ = ["REDIS_HOST", "REDIS_PORT", "RedisServer", "free_port", "port_open", "unavailable", "wait_until"]


@dataclass
class Backend:
    """Makes stores that share one namespace (unique per test), and closes them all afterwards."""

    name: str
    factory: Callable[[], Store]
    stores: list[Store] = field(default_factory=list)
    uri: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def make(self) -> Store:
        store = self.factory()
        self.stores.append(store)
        return store

    def close(self) -> None:
        for store in self.stores:
            store.close()


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("fakeredis", id="fakeredis"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("cluster", id="cluster", marks=pytest.mark.cluster),
]


def make_backend(request: pytest.FixtureRequest, kind: str, **options: Any) -> Backend:
    prefix = f"bbt{uuid.uuid4().hex[:12]}:"
    options = {"prefix": prefix, **options}
    if kind == "memory":
        shared = MemoryStore(**options)
        return Backend(kind, lambda: shared, options=options)
    if kind == "fakeredis":
        import fakeredis

        server = fakeredis.FakeServer()
        return Backend(
            kind, lambda: RedisStore(fakeredis.FakeRedis(server=server), **options), options=options
        )
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        backend = Backend(kind, lambda: from_uri(url, **options), uri=url, options=options)
        request.addfinalizer(lambda: _delete_prefix(url, prefix))
        return backend
    url = request.getfixturevalue("cluster_url")
    return Backend(kind, lambda: from_uri(url, **options), uri=url, options=options)


def _delete_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    made = make_backend(request, request.param)
    yield made
    made.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.make()
