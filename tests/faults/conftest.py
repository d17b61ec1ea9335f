"""Shared pieces of the fault suite: the fake Bedrock, call-record collection, Redis servers and small
Redis Clusters owned by one test, and the helpers that audit a store against the call records.

Services come from tests/service_fixtures.py; a missing one fails the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import bedrock_budget as bb
from backends import delete_prefix
from bedrock_budget.budgets import Ledger
from fake_bedrock_fixtures import Records
from polling import wait_until
from service_fixtures import RedisServer, free_port

__all__ = ["Cluster", "Records", "RedisServer", "free_port", "recorded_nanos", "unique_prefix"]

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Write one short line about rivers."}]}]
NANOS_PER_USD = 10**9


def recorded_nanos(records: list[bb.CallRecord]) -> int:
    """What the records say was spent, in the store's unit (each call rounded up on its own)."""
    return sum(r.cost.total_nanos for r in records if r.cost is not None)


def unique_prefix() -> str:
    return f"bbfault{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, emptied afterwards."""
    chosen = unique_prefix()
    yield chosen
    delete_prefix(redis_url, chosen)


@pytest.fixture
def ledgers() -> Iterator[Callable[[Ledger], Ledger]]:
    """Registers ledgers to close, with their stores, at teardown whatever the test did."""
    made: list[Ledger] = []

    def register(ledger: Ledger) -> Ledger:
        made.append(ledger)
        return ledger

    yield register
    for ledger in made:
        ledger.close()
        ledger.store.close()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore sleeps up to seconds between retries; the retry logic is what matters here."""
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def own_redis(redis_server_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own with an fsync-always AOF, so a stop and start keeps the data (a
    clean SIGTERM shutdown flushes it) the way a production restart would."""
    server = RedisServer(tmp_path, free_port(), "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Cluster:
    """A small Redis Cluster of masters without replicas, formed directly with CLUSTER MEET and
    ADDSLOTSRANGE (``redis-cli --cluster create`` sleeps in whole seconds; this takes under two)."""

    def __init__(self, directory: Path, masters: int, *extra: str) -> None:
        self.directory = directory
        self.servers: list[RedisServer] = []
        for index in range(masters):
            self.servers.append(
                RedisServer(
                    directory,
                    None,  # a free port below the ephemeral range, another if someone takes it first
                    *("--cluster-enabled", "yes"),
                    *("--cluster-config-file", f"nodes-{index}.conf"),
                    *extra,
                    with_bus=True,
                )
            )

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, decode_responses=True)

    def command(self, port: int, *args: Any) -> Any:
        client = self.node(port)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def start(self) -> None:
        for server in self.servers:
            server.start()
        ports = [s.port for s in self.servers]
        for port in ports:
            for other in ports:
                if other != port:
                    self.command(port, "CLUSTER", "MEET", "127.0.0.1", other)
        count = len(ports)
        for index, port in enumerate(ports):
            first, last = index * 16384 // count, (index + 1) * 16384 // count - 1
            self.command(port, "CLUSTER", "ADDSLOTSRANGE", first, last)
        self.wait_ok()

    def healthy(self) -> bool:
        try:
            for server in self.servers:
                if "cluster_state:ok" not in self.command(server.port, "CLUSTER", "INFO"):
                    return False
                lines = self.command(server.port, "CLUSTER", "NODES").splitlines()
                if len(lines) != len(self.servers):
                    return False
                for line in lines:
                    fields = line.split()
                    if fields[7] != "connected" or "fail" in fields[2]:
                        return False
        except redis.RedisError:
            return False
        return True

    def wait_ok(self, timeout: float = 20) -> None:
        wait_until(self.healthy, timeout, message="the cluster to report cluster_state:ok on every node")

    def node_id(self, port: int) -> str:
        return str(self.command(port, "CLUSTER", "MYID"))

    def owner(self, slot: int) -> int:
        """The port of the master serving ``slot``."""
        for first, last, master, *_ in self.command(self.servers[0].port, "CLUSTER", "SLOTS"):
            if int(first) <= slot <= int(last):
                return int(master[1])
        raise AssertionError(f"slot {slot} is not served")

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def kill(self, port: int) -> None:
        process = self.server(port).process
        assert process is not None
        process.kill()
        process.wait(10)
        self.server(port).process = None

    def stop(self) -> None:
        for server in self.servers:
            if server.process is not None:
                server.process.kill()
                server.process.wait(10)
                server.process = None


@pytest.fixture
def cluster_factory(redis_server_binary: str, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(masters: int = 3, *extra: str) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(made)}", masters, *extra)
        cluster.directory.mkdir()
        made.append(cluster)
        cluster.start()
        return cluster

    yield make
    for cluster in made:
        cluster.stop()
