"""Stores for the spend-ledger tests: memory, a real Redis and a real Redis Cluster, each under a prefix of
its own (keys under it are deleted afterwards on Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bedrock_budget.stores import Store, from_uri
from bedrock_budget.stores.memory import MemoryStore


@dataclass
class Target:
    kind: str
    uri: str | None
    prefix: str
    store: Store


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
        pytest.param("cluster", id="cluster", marks=pytest.mark.cluster),
    ]
)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    yield from _target(request, request.param)


@pytest.fixture(
    params=[
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
        pytest.param("cluster", id="cluster", marks=pytest.mark.cluster),
    ]
)
def shared_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """A store other processes (and the command line) reach by URI."""
    yield from _target(request, request.param)


def _target(request: pytest.FixtureRequest, kind: str) -> Iterator[Target]:
    prefix = f"bbspend{uuid.uuid4().hex[:10]}:"
    if kind == "memory":
        yield Target("memory", None, prefix, MemoryStore(prefix=prefix))
        return
    uri = request.getfixturevalue("redis_url" if kind == "redis" else "cluster_url")
    store = from_uri(uri, prefix=prefix)
    try:
        yield Target(kind, uri, prefix, store)
    finally:
        store.close()
        if kind == "redis":  # the cluster is the session's own, started in a temporary folder
            _delete(uri, prefix)


def _delete(uri: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(uri)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
