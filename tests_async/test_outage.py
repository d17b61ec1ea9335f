"""A Redis that goes away and comes back under an async client with ``on_store_error="allow"``: calls go on
while it is down (their spend journalled), the circuit breaker's probe finds it back by pinging on the
client's own loop, and the journal is replayed there, exactly once: the store's spend is what the records
cost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_budgets import ledger_of, spent_by_records, state

from bedrock_budget.budgets import Budget
from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import HAIKU, Records, converse, run, wrapped
from service_fixtures import RedisServer, free_port

BUDGET = Budget("outage", limit_usd="5")


@pytest.fixture
def own_redis(redis_server_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    # An AOF so a stop and start keeps the data, as a production restart would.
    server = RedisServer(tmp_path, free_port(), "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_journal_is_replayed_on_the_loop_when_the_store_returns(
    fake: FakeBedrock, records: Records, own_redis: RedisServer
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))
    uri = f"redis://127.0.0.1:{own_redis.port}/0?probe_interval=0.1&connect_timeout=0.2&socket_timeout=0.5"

    async def main() -> None:
        async with wrapped(fake, records, store=uri, budgets=[BUDGET], on_store_error="allow") as client:
            ledger = ledger_of(client)
            await converse(client)
            assert await ledger.flush() == 0
            own_redis.stop()
            for _ in range(5):
                await converse(client)  # allowed while the store is down
            await asyncio.sleep(0.05)  # the queued settlements fail and are journalled
            assert ledger.journal_depth >= 4
            assert ledger.store.breaker is not None
            assert ledger.store.breaker.state != "closed"
            own_redis.start()
            deadline = time.monotonic() + 20
            while ledger.journal_depth and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # the probe pings on this loop; the replay runs here too
            assert ledger.journal_depth == 0
            assert ledger.store.breaker.state == "closed"
            await ledger.flush()
            found = await state(ledger, BUDGET)
            assert (found.held_usd, found.active) == (0, 0)
            assert found.spent_usd == spent_by_records(records) > 0
            await ledger.aclose()

    run(main())
    assert [record.outcome for record in records] == ["ok"] * 6
