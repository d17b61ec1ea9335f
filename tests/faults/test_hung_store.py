"""A budget store that hangs rather than goes away: a redis-server of the test's own frozen with SIGSTOP
for several seconds while several processes call the fake Bedrock through it, then resumed (SIGCONT).

The circuit breaker must make only the first failure in each process wait for the socket timeout: every
call started after it applies the outage policy at once (p99 added latency <= 50 ms). Under ``allow`` no
call is lost and, once resumed, the store holds exactly the spend the call records report (the journal
replayed once, no hold left); under ``deny`` no refused call sends anything to Bedrock.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import CounterRef, from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records
from polling import wait_until
from service_fixtures import RedisServer, free_port

from . import _hung_worker
from .conftest import HAIKU, MESSAGES, NANOS_PER_USD, Cluster, unique_prefix

pytestmark = [pytest.mark.redis, pytest.mark.slow]

WORKERS = 4
#: Calls each worker makes after its circuit opened before the store is resumed (all refused under deny),
#: then calls each makes through the store once its circuit closed again: p99 over some 250 calls each.
FROZEN_CALLS = 150
RECOVERED_CALLS = 100
TIMEOUTS = "socket_timeout=0.25&connect_timeout=0.25&probe_interval=0.2"
MAX_P99_ADDED = 0.050


@pytest.fixture
def frozen_redis(redis_server_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (never the shared one), resumed whatever the test did."""
    server = RedisServer(tmp_path, free_port())
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


def run_workers(
    fake: FakeBedrock, server: RedisServer, uri: str, policy: str
) -> tuple[list[Any], int, float]:
    """Start the workers, freeze the server once they are calling, resume it once each has made
    ``FROZEN_CALLS`` calls since its circuit opened, stop them once each has made ``RECOVERED_CALLS`` through
    the recovered store; the workers' reports, how many requests the fake received while the server was
    frozen after every worker's circuit had opened, and when it was frozen (``time.monotonic``, the same
    clock in every process)."""
    assert server.process is not None
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    queues = [context.Queue() for _ in range(WORKERS)]
    progress = [context.Array("i", [-1, 0]) for _ in range(WORKERS)]
    workers = [
        context.Process(
            target=_hung_worker.call_until_stopped,
            args=(fake.endpoint_url, uri, policy, HAIKU, stop, counts, q),
        )
        for q, counts in zip(queues, progress, strict=True)
    ]

    def every(index: int, at_least: int) -> bool:
        return all(counts[index] >= at_least for counts in progress)

    def seen() -> str:
        counts = [c[:] for c in progress]
        return f"the workers' calls since their circuit opened, and after it closed again: {counts}"

    for worker in workers:
        worker.start()
    try:
        for queue in queues:
            assert queue.get(timeout=120) == "warm"  # each worker made its first calls
        frozen_at = time.monotonic()
        os.kill(server.process.pid, signal.SIGSTOP)
        # Each worker's first failure waits out the socket timeout (twice, with the retry) and a reconnect.
        wait_until(lambda: every(_hung_worker.OPENED, 0), 30, message=lambda: f"every circuit open; {seen()}")
        sent_while_frozen = fake.request_count
        wait_until(lambda: every(_hung_worker.OPENED, FROZEN_CALLS), 60, message=seen)
        sent_while_frozen = fake.request_count - sent_while_frozen
        os.kill(server.process.pid, signal.SIGCONT)
        wait_until(lambda: every(_hung_worker.CLOSED_OK, RECOVERED_CALLS), 60, message=seen)
        stop.set()
        reports = [queue.get(timeout=60) for queue in queues]
        for worker in workers:
            worker.join(30)
            assert worker.exitcode == 0
        return reports, sent_while_frozen, frozen_at
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join(10)


def added_latency_p99(report: dict[str, Any], frozen_at: float) -> tuple[float, int]:
    """p99 of the time the budget ledger (reserve and settle) added to the calls started after the process's
    circuit first opened, and how many such calls there were. The whole calls' times are printed beside
    the ledger's, against the median before the outage: on a loaded machine they mostly measure the load."""
    first_open = report["first_open"]
    assert first_open is not None, "this process never saw the store fail"
    calls = report["calls"]
    before = [c for c in calls if c[0] + c[1] < frozen_at]
    after = [c for c in calls if c[0] >= first_open]
    assert len(before) >= 20
    assert len(after) >= 100
    added = sorted(ledger for _, _, ledger, _ in after)
    p99 = added[int(len(added) * 0.99) - 1]
    whole_before = statistics.median(seconds for _, seconds, _, _ in before)
    whole_after = sorted(seconds for _, seconds, _, _ in after)
    print(
        f"{len(after)} calls after the first failure: in the ledger p50 {added[len(added) // 2] * 1000:.2f} "
        f"ms, p99 {p99 * 1000:.2f} ms, max {added[-1] * 1000:.1f} ms (before the outage: p50 "
        f"{statistics.median(c[2] for c in before) * 1000:.2f} ms); whole call p50 "
        f"{whole_after[len(whole_after) // 2] * 1000:.1f} ms, p99 "
        f"{whole_after[int(len(whole_after) * 0.99) - 1] * 1000:.1f} ms "
        f"(before: p50 {whole_before * 1000:.1f} ms)"
    )
    return p99, len(after)


def test_allow_fails_fast_loses_nothing_and_replays_once(
    fake: FakeBedrock, frozen_redis: RedisServer
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=120, output_tokens=30))
    prefix = unique_prefix()
    uri = f"redis://127.0.0.1:{frozen_redis.port}/0?prefix={prefix}&{TIMEOUTS}"
    reports, _, frozen_at = run_workers(fake, frozen_redis, uri, "allow")

    for report in reports:
        p99, count = added_latency_p99(report, frozen_at)
        assert p99 <= MAX_P99_ADDED, f"p99 added latency {p99 * 1000:.1f} ms over {count} calls"
        assert all(outcome == "ok" for *_, outcome in report["calls"])  # no call lost
        assert report["records_ok"] == len(report["calls"])
        assert report["unsettled"] == 0
        assert report["dropped"] == 0
        assert report["transitions"]["open"] >= 1
        assert report["transitions"]["closed"] >= 1
    assert fake.request_count == sum(len(r["calls"]) for r in reports)

    with Ledger(from_uri(uri), [bb.Budget("all", window="lifetime", limit_usd="1000")]) as ledger:
        status = ledger.read("all")
        assert status.spent_usd * NANOS_PER_USD == sum(r["spent_nanos"] for r in reports)
        assert status.reserved_usd == 0
        assert status.active_reservations == 0
        ledger.store.close()


def test_deny_refuses_fast_and_sends_nothing_to_bedrock(fake: FakeBedrock, frozen_redis: RedisServer) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=120, output_tokens=30))
    uri = f"redis://127.0.0.1:{frozen_redis.port}/0?prefix={unique_prefix()}&{TIMEOUTS}"
    reports, sent_while_frozen, frozen_at = run_workers(fake, frozen_redis, uri, "deny")

    assert sent_while_frozen == 0
    denied = 0
    for report in reports:
        p99, count = added_latency_p99(report, frozen_at)
        assert p99 <= MAX_P99_ADDED, f"p99 added latency {p99 * 1000:.1f} ms over {count} calls"
        outcomes = [outcome for *_, outcome in report["calls"]]
        denied += outcomes.count("denied")
        assert outcomes[-1] == "ok"  # the store is used again once it answers
        assert report["records_ok"] == outcomes.count("ok")
        assert report["unsettled"] == 0
    assert denied >= WORKERS * 50
    # Every request the fake received was an admitted call: no refused call reached Bedrock.
    assert fake.request_count == sum(r["records_ok"] for r in reports)


@pytest.mark.cluster
def test_a_frozen_cluster_master_fails_only_its_own_slots_fast(
    fake: FakeBedrock, cluster_factory: Callable[..., Cluster], records: Records
) -> None:
    # No failover (no replicas; a node timeout longer than the freeze) and partial coverage allowed, so the
    # other masters keep serving while one is frozen.
    cluster = cluster_factory(3, "--cluster-node-timeout", "30000", "--cluster-require-full-coverage", "no")
    fake.set_usage(HAIKU, UsageSpec(input_tokens=100, output_tokens=20))
    store = from_uri(cluster.url + f"?prefix={unique_prefix()}&{TIMEOUTS}")
    per_user = bb.Budget("per-user", scope={"user": "*"}, window="lifetime", limit_usd="10")
    ledger = Ledger(store, [per_user], on_store_error="deny")
    client = bb.wrap(fake.client(), ledger=ledger, listeners=[records])
    users = [f"user-{n}" for n in range(12)]

    def call(user: str) -> tuple[str, float]:
        started = time.monotonic()
        try:
            with bb.attribute(user=user):
                client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 32})
            return "ok", time.monotonic() - started
        except bb.StoreUnavailableError:
            return "denied", time.monotonic() - started

    try:
        for user in users:
            assert call(user)[0] == "ok"
        start, end = per_user.window.bounds(time.time())
        owner = {
            user: cluster.owner(
                key_slot(
                    store.key(
                        CounterRef("per-user", (("user", user),), "lifetime", per_user.timezone, start, end)
                    ).encode()
                )
            )
            for user in users
        }
        victim = owner[users[0]]
        frozen = [u for u in users if owner[u] == victim]
        serving = [u for u in users if owner[u] != victim]
        assert frozen
        assert serving
        process = cluster.server(victim).process
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)
        try:
            first, waited = call(frozen[0])
            assert first == "denied"
            sent = fake.request_count
            denied = [call(u) for _ in range(20) for u in frozen]
            served = [call(u) for _ in range(5) for u in serving]
        finally:
            os.kill(process.pid, signal.SIGCONT)
        assert {outcome for outcome, _ in denied} == {"denied"}
        times = sorted(seconds for _, seconds in denied)
        p99 = times[int(len(times) * 0.99) - 1]
        print(f"first failure {waited * 1000:.0f} ms; then {len(times)} refusals, p99 {p99 * 1000:.1f} ms")
        assert p99 <= MAX_P99_ADDED
        assert {outcome for outcome, _ in served} == {"ok"}  # the other masters keep serving
        assert fake.request_count == sent + len(served)  # no refused call reached Bedrock

        assert store.breaker is not None
        wait_until(
            lambda: store.breaker is not None and store.breaker.state == "closed",
            10,
            message="the circuit to close",
        )
        assert {call(u)[0] for u in frozen} == {"ok"}
        assert ledger.flush() == 0
        for user in users:
            spent = sum(r.cost.total_nanos for r in records if r.attribution.get("user") == user and r.cost)
            assert ledger.read("per-user", {"user": user}).spent_usd * NANOS_PER_USD == spent
    finally:
        ledger.close()
        store.close()
