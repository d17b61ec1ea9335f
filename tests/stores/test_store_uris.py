"""Choosing and configuring stores by URI, and Redis Sentinel end to end."""

from __future__ import annotations

import hashlib
import importlib
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import bedrock_budget.stores as stores
from bedrock_budget.errors import ConfigurationError, StoreUnavailableError
from bedrock_budget.stores import (
    CounterRef,
    Hold,
    MemoryStore,
    Spend,
    Store,
    from_uri,
    register_store,
    schemes,
)
from bedrock_budget.stores.redis import _SCRIPTS, RedisClusterStore, RedisSentinelStore, RedisStore
from polling import wait_until
from service_fixtures import RedisServer, free_port


def test_memory_is_the_default() -> None:
    assert isinstance(from_uri(), MemoryStore)
    store = from_uri("MEMORY://", prefix="x:")
    assert isinstance(store, MemoryStore)
    assert store.prefix == "x:"
    with pytest.raises(ConfigurationError, match="no host or path"):
        from_uri("memory://somewhere")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("localhost:6379", "must look like scheme://"),
        ("mongodb://x", "unknown store scheme 'mongodb'"),
        ("redis://127.0.0.1/0?prefix={x}", "key prefix"),
        ("redis://127.0.0.1/0?colour=red", "colour"),
        ("redis+sentinel://127.0.0.1:26379", "service name"),
        ("redis+cluster://127.0.0.1:notaport", "bad port"),
    ],
)
def test_bad_uris(uri: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        from_uri(uri).close()


def test_redis_options_from_query_and_keywords() -> None:
    store = from_uri(
        "redis://:pw@127.0.0.1:6390/3?prefix=app:&socket_timeout=0.2&key_slack=10", tombstone_retention=99
    )
    assert isinstance(store, RedisStore)
    assert (store.prefix, store.key_slack, store.tombstone_retention) == ("app:", 10, 99)
    kwargs: dict[str, Any] = store.client.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"], kwargs["db"]) == (0.2, 0.5, 3)
    assert kwargs["password"] == "pw"
    assert store.name == "redis://:***@127.0.0.1:6390/3?prefix=app:&socket_timeout=0.2&key_slack=10"
    store.close()
    store.close()


def test_tls_and_valkey_aliases() -> None:
    from redis.connection import SSLConnection

    tls = from_uri("rediss://127.0.0.1:6390/0")
    assert tls.client.connection_pool.connection_class is SSLConnection  # type: ignore[attr-defined]
    tls.close()
    valkey = from_uri("valkey://127.0.0.1:6390/0")
    assert isinstance(valkey, RedisStore)
    assert valkey.client.connection_pool.connection_class is not SSLConnection  # type: ignore[attr-defined]
    valkey.close()
    valkeys = from_uri("VALKEYS://127.0.0.1:6390/0")
    assert isinstance(valkeys, RedisStore)
    assert valkeys.client.connection_pool.connection_class is SSLConnection  # type: ignore[attr-defined]
    valkeys.close()
    assert {"redis", "rediss", "redis+sentinel", "redis+cluster", "memory"} <= set(schemes())


def _store_classes(cls: type[Store]) -> set[type[Store]]:
    found: set[type[Store]] = set()
    for subclass in cls.__subclasses__():
        found |= {subclass, *_store_classes(subclass)}
    return found


def test_the_registry_lists_every_built_in_store_with_the_schemes_it_declares() -> None:
    resolved: dict[type[Store], tuple[str, ...]] = {}
    for target, served in stores._BUILTIN_STORES.items():
        module, _, name = target.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert cls.schemes == served, target
        resolved[cls] = served
    ours = [cls for cls in _store_classes(Store) if cls.__module__.startswith("bedrock_budget.stores.")]
    built_in = {cls for cls in ours if cls.schemes}
    assert built_in == set(resolved) == {MemoryStore, RedisStore, RedisSentinelStore, RedisClusterStore}
    for alias, scheme in stores._SCHEME_ALIASES.items():
        assert alias not in {s for served in resolved.values() for s in served}
        assert stores._REGISTRY[alias] == stores._REGISTRY[scheme]
    assert {*stores._SCHEME_ALIASES, *(s for served in resolved.values() for s in served)} <= set(schemes())


def test_choosing_the_memory_store_does_not_load_redis_py() -> None:
    code = (
        "import sys\n"
        "from bedrock_budget.stores import from_uri, schemes\n"
        "from_uri('memory://').close()\n"
        "assert 'redis+cluster' in schemes()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'redis' or '.stores.redis' in m)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cluster_connects_lazily_and_reports_outages() -> None:
    started = time.monotonic()
    store = from_uri(f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}", connect_timeout=0.2)
    assert isinstance(store, RedisClusterStore)
    with pytest.raises(StoreUnavailableError):
        store.ping()
    assert time.monotonic() - started < 5
    store.close()


def test_cluster_scripts_are_registered_without_connecting() -> None:
    cluster = from_uri(f"redis+cluster://127.0.0.1:{free_port()}", connect_timeout=0.2)
    standalone = from_uri(f"redis://127.0.0.1:{free_port()}/0")
    assert isinstance(cluster, RedisClusterStore)
    assert isinstance(standalone, RedisStore)
    assert cluster.client._client is None  # registering the scripts connected nothing
    for name, text in _SCRIPTS.items():
        sha = hashlib.sha1(text.encode("utf-8")).hexdigest()
        assert cluster._scripts[name].sha == standalone._scripts[name].sha == sha
    cluster.close()
    standalone.close()


def test_custom_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def factory(uri: str, **options: Any) -> MemoryStore:
        made.append(uri)
        return MemoryStore(**options)

    monkeypatch.setattr(stores, "_REGISTRY", dict(stores._REGISTRY))  # registered for this test only
    register_store("custom", factory)
    assert isinstance(from_uri("custom://anything", prefix="c:"), MemoryStore)
    assert made == ["custom://anything"]


@pytest.mark.redis
def test_sentinel_end_to_end(redis_server_binary: str, tmp_path: Path) -> None:
    master = RedisServer(tmp_path, free_port())
    master.start()
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor budgets 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds budgets 5000\n",
        encoding="utf-8",
    )
    sentinel = subprocess.Popen(
        [redis_server_binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    store = None
    try:
        cli = shutil.which("redis-cli")
        assert cli is not None

        def knows_master() -> bool:
            out = subprocess.run(
                [cli, "-p", str(port), "sentinel", "get-master-addr-by-name", "budgets"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            return str(master.port) in out

        wait_until(knows_master, 10, message="sentinel to know the master")
        store = from_uri(f"redis+sentinel://127.0.0.1:{port}/budgets/2", prefix="sen:")
        assert isinstance(store, RedisSentinelStore)
        ref = CounterRef(budget="b", scope=(), window="lifetime", timezone="UTC", start=0, end=None)
        hold = Hold(ref=ref, limit_usd=10, limit_tokens=None, usd=4, tokens=0)
        assert store.reserve("r", [hold], now_ms=1000, deadline_ms=9000).granted
        assert store.settle("r", [Spend(ref, 3, 0)], now_ms=1000)[0]
        assert store.read([ref], now_ms=1000)[0].spent_usd == 3
    finally:
        if store is not None:
            store.close()
        sentinel.terminate()
        sentinel.wait(10)
        master.stop()
