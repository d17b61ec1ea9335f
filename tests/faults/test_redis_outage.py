"""The budget store goes away in the middle of a run and comes back (a redis-server of the test's own,
stopped with SIGTERM and started again on the same port and data directory, AOF on).

- ``deny``: while it is down every call fails fast with ``StoreUnavailableError`` before any byte goes to
  Bedrock; streams opened before the outage settle into the local journal and are replayed, once, when it
  returns.
- ``allow``: calls proceed, their spend is journalled and replayed when the store returns.

Either way the store ends up holding exactly the spend the call records report, and no hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records
from polling import wait_until

from .conftest import (
    HAIKU,
    MESSAGES,
    NANOS_PER_USD,
    RedisServer,
    free_port,
    recorded_nanos,
    unique_prefix,
)

pytestmark = pytest.mark.redis

# Connection refused is immediate; this bounds one reserve (connect_timeout 0.2 s, one retry) generously.
FAIL_FAST_SECONDS = 1.0


def converse(client: Any) -> None:
    client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64})


def open_streams(client: Any, count: int) -> list[Any]:
    streams = []
    for _ in range(count):
        stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64})[
            "stream"
        ]
        next(iter(stream))
        streams.append(stream)
    return streams


def audit(ledger: Ledger, records: Records) -> None:
    assert ledger.journal_depth == 0
    assert ledger.journal_dropped == 0
    status = ledger.read("all")
    assert status.spent_usd * NANOS_PER_USD == recorded_nanos(records)
    assert status.reserved_usd == 0
    assert status.active_reservations == 0


def test_deny_fails_fast_and_charges_nothing_twice(
    fake: FakeBedrock, own_redis: RedisServer, records: Records, ledgers: Callable[[Ledger], Ledger]
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=200, output_tokens=20))
    store = from_uri(
        f"redis://127.0.0.1:{own_redis.port}/0",
        prefix=unique_prefix(),
        socket_timeout=0.5,
        connect_timeout=0.2,
    )
    ledger = ledgers(
        Ledger(store, [bb.Budget("all", window="lifetime", limit_usd="10")], on_store_error="deny")
    )
    client = bb.wrap(fake.client(), ledger=ledger, listeners=[records])
    for _ in range(5):
        converse(client)
    streams = open_streams(client, 2)
    assert ledger.read("all").active_reservations == 2

    own_redis.stop()
    sent = fake.request_count
    for _ in range(10):
        started = time.monotonic()
        with pytest.raises(bb.StoreUnavailableError):
            converse(client)
        assert time.monotonic() - started < FAIL_FAST_SECONDS
    assert fake.request_count == sent  # refused before anything went to Bedrock
    for stream in streams:
        list(stream)  # the caller's stream is unaffected; its settlement waits in the journal
    # Each stream's budget spend at once, and its spend-ledger entry from the batch sent a few milliseconds
    # later (a synchronous ledger on Redis sends those apart).
    wait_until(lambda: ledger.journal_depth == 4, 5, message="both streams' settlements in the journal")
    assert sum(r.outcome == "blocked" for r in records) == 10

    own_redis.start()
    # The circuit breaker's probe finds the store back and replays the journal.
    wait_until(lambda: ledger.journal_depth == 0, 5, message="the journal to be replayed")
    converse(client)
    assert ledger.flush() == 0
    audit(ledger, records)
    assert sum(r.outcome == "ok" for r in records) == 8


def test_allow_journals_and_replays_to_the_sum_of_the_records(
    fake: FakeBedrock, own_redis: RedisServer, records: Records
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=200, output_tokens=20))
    uri = f"redis://127.0.0.1:{own_redis.port}/0?prefix={unique_prefix()}&socket_timeout=0.5&connect_timeout=0.2"
    client = bb.wrap(
        fake.client(),
        budgets=[bb.Budget("all", window="lifetime", limit_usd="10")],
        store=uri,
        on_store_error="allow",
        listeners=[records],
    )
    guard = client.bedrock_budget_meter.guard
    assert guard is not None
    ledger: Ledger = guard.ledger
    try:
        for _ in range(5):
            converse(client)
        streams = open_streams(client, 2)

        own_redis.stop()
        for _ in range(10):
            started = time.monotonic()
            converse(client)
            assert time.monotonic() - started < 2 * FAIL_FAST_SECONDS  # a reserve and a settle attempt
        streams.extend(open_streams(client, 1))
        for stream in streams:
            list(stream)
        # 13 settlements, and the 13 spend-ledger entries their batches journal as they fail.
        wait_until(lambda: ledger.journal_depth == 26, 5, message="every entry journalled")
        assert all(r.outcome == "ok" for r in records)

        own_redis.start()
        wait_until(lambda: ledger.journal_depth == 0, 5, message="the journal to be replayed")
        converse(client)
        audit(ledger, records)
        assert len(records) == 19
    finally:
        ledger.close()


def test_a_hold_lost_with_the_data_is_still_charged(
    fake: FakeBedrock, redis_server_binary: str, tmp_path: Path, records: Records
) -> None:
    # No persistence: a restart (or a failover to a replica that had not seen the hold) loses the hold.
    server = RedisServer(tmp_path, free_port())
    server.start()
    try:
        fake.set_usage(HAIKU, UsageSpec(input_tokens=200, output_tokens=20))
        store = from_uri(f"redis://127.0.0.1:{server.port}/0", socket_timeout=0.5, connect_timeout=0.2)
        with Ledger(store, [bb.Budget("all", window="lifetime", limit_usd="10")]) as ledger:
            client = bb.wrap(fake.client(), ledger=ledger, listeners=[records])
            (stream,) = open_streams(client, 1)
            server.stop()
            server.start()
            list(stream)
            assert ledger.flush() == 0
            assert ledger.read("all").spent_usd * NANOS_PER_USD == recorded_nanos(records)
            store.close()
    finally:
        server.stop()
