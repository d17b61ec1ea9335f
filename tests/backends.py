"""Every store backend the suites run against, defined once.

A test asks for the ``backend`` fixture and says which backends it runs on with a marker::

    @pytest.mark.backends("redis", "cluster")   # or "all"; module-wide with pytestmark

and runs once per backend, with the backend's name as its id (``test_x[redis]``). The backends:

- ``memory``: one :class:`MemoryStore` shared by every store the test makes;
- ``fakeredis``: the Lua scripts on fakeredis, one fake server per test;
- ``redis``: the Redis on 127.0.0.1:6379;
- ``sentinel``: the same Redis reached through the Sentinel on 127.0.0.1:26379 (``redis+sentinel://``);
- ``cluster``: the 3-master Redis Cluster the session starts (tests/service_fixtures.py).

Every backend gives the test a key prefix of its own, so tests on the shared Redis never see each other's
keys; afterwards the stores are closed and the keys under that prefix (and only those) are deleted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from bedrock_budget.stores import Store, from_uri
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.stores.redis import RedisStore

__all__ = ["ALL", "KINDS", "Backend", "backend", "backend_params", "delete_prefix", "make_backend"]

#: Every backend, in the order tests run on them.
KINDS = ("memory", "fakeredis", "redis", "sentinel", "cluster")
ALL = "all"
#: The fixture that gives each service-backed kind its URI.
_SERVICE_FIXTURES = {"redis": "redis_url", "sentinel": "sentinel_url", "cluster": "cluster_url"}
#: Markers that select tests needing a service (``-m "not cluster"``).
_SERVICE_MARKS = {
    "redis": pytest.mark.redis,
    "sentinel": pytest.mark.sentinel,
    "cluster": pytest.mark.cluster,
}


def backend_params(*names: str) -> list[Any]:
    """``pytest.param``s for the named backends (``"all"`` is every one), marked by the service each
    needs; unknown names are a usage error."""
    if not names:
        raise pytest.UsageError("@pytest.mark.backends needs at least one backend name or 'all'")
    chosen: list[str] = []
    for name in names:
        if name not in (*KINDS, ALL):
            raise pytest.UsageError(f"unknown backend {name!r}: choose from {', '.join(KINDS)} or {ALL!r}")
        for kind in KINDS if name == ALL else (name,):
            if kind not in chosen:
                chosen.append(kind)
    ordered = [kind for kind in KINDS if kind in chosen]
    return [pytest.param(kind, id=kind, marks=_SERVICE_MARKS.get(kind, ())) for kind in ordered]


@dataclass
class Backend:
    """Makes stores on one backend that share one namespace (the test's own prefix)."""

    kind: str
    prefix: str
    options: dict[str, Any]
    uri: str | None = None
    stores: list[Store] = field(default_factory=list)
    _shared: MemoryStore | None = None
    _fake_server: Any = None

    def make(self, **overrides: Any) -> Store:
        """A store on this backend. Without ``overrides`` every store made shares the namespace, like two
        processes pointed at the same URI; ``overrides`` change the store's options (a ``prefix`` given here
        should start with :attr:`prefix`, so the cleanup finds its keys)."""
        options = {**self.options, **overrides}
        store: Store
        if self.kind == "memory":
            if not overrides:
                if self._shared is None:
                    self._shared = MemoryStore(**options)
                store = self._shared
            else:
                store = MemoryStore(**options)
        elif self.kind == "fakeredis":
            import fakeredis

            if self._fake_server is None:
                self._fake_server = fakeredis.FakeServer()
            store = RedisStore(fakeredis.FakeRedis(server=self._fake_server), **options)
        else:
            assert self.uri is not None
            store = from_uri(self.uri, **options)
        if not any(made is store for made in self.stores):
            self.stores.append(store)
        return store

    def close(self) -> None:
        """Close every store made and delete the keys under this test's prefix."""
        for store in self.stores:
            store.close()
        self.stores.clear()
        if self.uri is not None:
            delete_prefix(self.uri, self.prefix)


def make_backend(request: pytest.FixtureRequest, kind: str, **options: Any) -> Backend:
    """A backend of ``kind`` with a fresh prefix; closed (and its keys deleted) when the test ends."""
    if kind not in KINDS:
        raise pytest.UsageError(f"unknown backend {kind!r}: choose from {', '.join(KINDS)}")
    prefix = f"bbt{uuid.uuid4().hex[:12]}:"
    fixture = _SERVICE_FIXTURES.get(kind)
    uri: str | None = request.getfixturevalue(fixture) if fixture else None
    made = Backend(kind, prefix, {"prefix": prefix, **options}, uri=uri)
    request.addfinalizer(made.close)
    return made


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend this run of the test is on (parametrized from its ``backends`` marker)."""
    if not hasattr(request, "param"):
        raise pytest.UsageError(f"{request.node.nodeid} uses `backend` without @pytest.mark.backends(...)")
    return make_backend(request, request.param)


def delete_prefix(uri: str, prefix: str) -> int:
    """Delete the keys under ``prefix`` (and nothing else) behind a ``redis://``, ``redis+sentinel://`` or
    ``redis+cluster://`` URI; returns how many there were."""
    if not prefix:
        raise ValueError("refusing to delete every key: the prefix is empty")
    pattern = "".join("\\" + c if c in "\\*?[]" else c for c in prefix) + "*"
    clients = _masters(uri)
    try:
        deleted = 0
        for client in clients:
            keys = list(client.scan_iter(match=pattern, count=1000))
            pipe = client.pipeline(transaction=False)
            for key in keys:  # one key a command: on a cluster node, keys of different slots cannot share one
                pipe.delete(key)
            deleted += sum(int(n) for n in pipe.execute())
        return deleted
    finally:
        for client in clients:
            client.close()


def _masters(uri: str) -> list[Any]:
    """Plain clients to every master holding keys behind ``uri``."""
    import redis

    parts = urlsplit(uri)
    if parts.scheme.endswith("+cluster"):
        from redis.cluster import RedisCluster

        host, _, port = parts.netloc.rsplit("@", 1)[-1].split(",", 1)[0].rpartition(":")
        cluster = RedisCluster(host=host, port=int(port))
        try:
            nodes = [(node.host, node.port) for node in cluster.get_primaries()]
        finally:
            cluster.close()
        return [redis.Redis(host=h, port=p) for h, p in nodes]
    if parts.scheme.endswith("+sentinel"):
        from redis.sentinel import Sentinel

        service, *db = [p for p in parts.path.split("/") if p]
        sentinel = Sentinel([(parts.hostname or "127.0.0.1", parts.port or 26379)], socket_timeout=5)
        try:
            host, port = sentinel.discover_master(service)
        finally:
            for connection in sentinel.sentinels:
                connection.close()
        return [redis.Redis(host=host, port=port, db=int(db[0]) if db else 0)]
    return [redis.Redis.from_url(uri.split("?", 1)[0])]
