"""The cluster store sends each script straight to the master of its slot, and goes the RedisCluster
client's way (redirections, topology refresh) whenever that direct call fails."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis

from bedrock_budget.stores import CounterRef, Hold, SettleStatus, Spend, from_uri
from bedrock_budget.stores.redis import RedisClusterStore

pytestmark = pytest.mark.cluster

T0 = 1_700_000_000_000
REF = CounterRef(
    budget="routing", scope=(("user", "u-1"),), window="lifetime", timezone="UTC", start=0, end=None
)


def _store(cluster_url: str) -> RedisClusterStore:
    store = from_uri(cluster_url, prefix=f"bbt{uuid.uuid4().hex[:12]}:")
    assert isinstance(store, RedisClusterStore)
    return store


def _evalsha_calls(client: Any) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def _round_trip(store: RedisClusterStore, rid: str) -> None:
    hold = Hold(ref=REF, limit_usd=10_000, limit_tokens=None, usd=100, tokens=0)
    assert store.reserve(rid, [hold], now_ms=T0, deadline_ms=T0 + 60_000).granted
    (outcome,) = store.settle(rid, [Spend(REF, 60, 0)], now_ms=T0)
    assert outcome.status is SettleStatus.SETTLED


def test_scripts_run_on_the_master_of_the_slot(cluster_url: str) -> None:
    store = _store(cluster_url)
    try:
        _round_trip(store, "warm")
        cluster = store.client.cluster()
        owner = store._node_client(cluster.get_node_from_key(store._keys(REF)[0]))
        before = _evalsha_calls(owner)
        _round_trip(store, "second")
        assert _evalsha_calls(owner) - before == 2
        assert store.read([REF], now_ms=T0)[0].spent_usd == 120
    finally:
        store.close()


def test_a_redirected_direct_call_falls_back_to_the_cluster_client(cluster_url: str) -> None:
    store = _store(cluster_url)
    try:
        _round_trip(store, "warm")
        cluster = store.client.cluster()
        owner = cluster.get_node_from_key(store._keys(REF)[0])
        other = next(node for node in cluster.get_primaries() if node.name != owner.name)
        wrong = cluster.get_redis_connection(other)
        moved: list[Exception] = []

        def misrouted(node: Any) -> Any:
            # What a stale view of the cluster does after a slot moved: ask a node that replies MOVED.
            class Recorder:
                def evalsha(self, *args: Any) -> Any:
                    try:
                        return wrong.evalsha(*args)
                    except redis.exceptions.ResponseError as exc:
                        moved.append(exc)
                        raise

                def script_load(self, text: str) -> Any:
                    return wrong.script_load(text)

            return Recorder()

        store._node_client = misrouted  # type: ignore[method-assign]
        _round_trip(store, "redirected")
        assert len(moved) == 2  # reserve and settle each went to the wrong node first
        assert all(isinstance(exc, redis.exceptions.MovedError) for exc in moved)
        assert store.read([REF], now_ms=T0)[0].spent_usd == 120  # each applied once
    finally:
        store.close()
