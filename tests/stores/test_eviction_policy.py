"""A Redis that may evict budget counters is refused: real redis-server processes of the test's own, one per
``maxmemory-policy``, read through ``CONFIG GET`` and, where CONFIG is renamed away (as on managed
services), through ``INFO memory``. ``allow_eviction`` opts in; evictions show in ``evicted_keys``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.errors import EvictionPolicyError
from bedrock_budget.stores import from_uri
from bedrock_budget.stores.redis import RedisStore
from polling import wait_until
from service_fixtures import RedisServer, free_port

pytestmark = pytest.mark.redis

ServerFactory = Callable[..., RedisServer]


@pytest.fixture
def server_with(redis_server_binary: str, tmp_path: Path) -> Iterator[ServerFactory]:
    made: list[RedisServer] = []

    def start(policy: str, *extra: str, cluster: bool = False) -> RedisServer:
        port = free_port(with_bus=cluster)
        if cluster:
            extra = (*extra, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf")
        server = RedisServer(tmp_path, port, "--maxmemory", "64mb", "--maxmemory-policy", policy, *extra)
        server.start()
        made.append(server)
        return server

    yield start
    for server in made:
        server.stop()


def uri(server: RedisServer, query: str = "") -> str:
    return f"redis://127.0.0.1:{server.port}/0" + (f"?{query}" if query else "")


def test_noeviction_is_accepted(server_with: ServerFactory) -> None:
    with from_uri(uri(server_with("noeviction"))) as store:
        store.ping()
        with Ledger(store, [bb.Budget("all", window="lifetime", limit_usd="1")]) as ledger:
            ledger.release(ledger.reserve({}, "m", None, 5, {}))
            assert ledger.read("all").spent_usd == 0


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-ttl"])
def test_an_evicting_policy_is_refused_with_a_clear_error(server_with: ServerFactory, policy: str) -> None:
    with from_uri(uri(server_with(policy))) as store:
        with pytest.raises(EvictionPolicyError) as refused:
            store.ping()
        assert refused.value.policy == policy
        assert isinstance(refused.value, bb.ConfigurationError)
        assert f"maxmemory-policy {policy!r}" in str(refused.value)
        assert "allow_eviction" in str(refused.value)
        # Not an outage: the ledger does not proceed under 'allow', it raises on every call.
        with Ledger(
            store, [bb.Budget("all", window="lifetime", limit_usd="1")], on_store_error="allow"
        ) as ledger:
            for _ in range(2):
                with pytest.raises(EvictionPolicyError):
                    ledger.reserve({}, "m", None, 5, {})
            assert ledger.journal_depth == 0


def test_the_policy_is_read_from_info_where_config_is_renamed_away(server_with: ServerFactory) -> None:
    server = server_with("volatile-lru", "--rename-command", "CONFIG", "")
    client = redis.Redis(port=server.port)
    with pytest.raises(redis.ResponseError):
        client.config_get("maxmemory-policy")
    client.close()
    with from_uri(uri(server)) as store, pytest.raises(EvictionPolicyError, match="volatile-lru"):
        store.ping()
    with from_uri(uri(server_with("noeviction", "--rename-command", "CONFIG", ""))) as store:
        store.ping()


def test_opting_in_accepts_an_evicting_policy(server_with: ServerFactory) -> None:
    server = server_with("allkeys-lru")
    with from_uri(uri(server, "allow_eviction=1")) as store:
        store.ping()
    with from_uri(uri(server), allow_eviction=True) as store:
        store.ping()
    with RedisStore(redis.Redis(port=server.port), allow_eviction=True) as store:
        store.ping()
    with from_uri(uri(server, "allow_eviction=0")) as store, pytest.raises(EvictionPolicyError):
        store.ping()
    with pytest.raises(bb.ConfigurationError, match="allow_eviction must be on or off"):
        from_uri(uri(server, "allow_eviction=maybe"))


def test_evicted_keys_grow_when_the_server_evicts(server_with: ServerFactory) -> None:
    server = server_with("allkeys-random", "--maxmemory", "2mb")
    with from_uri(uri(server, "allow_eviction=1")) as store:
        assert isinstance(store, RedisStore)
        store.ping()
        assert store.evicted_keys() == 0
        filler = redis.Redis(port=server.port)
        try:
            pipe = filler.pipeline(transaction=False)
            for index in range(2000):
                pipe.set(f"filler:{index}", "x" * 2000)
            pipe.execute()
        finally:
            filler.close()
        evicted = store.evicted_keys()
        assert evicted is not None
        assert evicted > 0


@pytest.mark.parametrize("policy", ["volatile-lru", "noeviction"])
def test_a_cluster_is_checked_on_its_masters(server_with: ServerFactory, policy: str) -> None:
    server = server_with(policy, cluster=True)
    node = redis.Redis(port=server.port, decode_responses=True)
    try:
        node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        wait_until(
            lambda: "cluster_state:ok" in node.execute_command("CLUSTER", "INFO"), 20, message="cluster ok"
        )
    finally:
        node.close()
    with from_uri(f"redis+cluster://127.0.0.1:{server.port}") as store:
        if policy == "noeviction":
            store.ping()
        else:
            with pytest.raises(EvictionPolicyError, match=policy):
                store.ping()
