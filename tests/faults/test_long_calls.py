"""Calls that outlive the reservation TTL keep their holds, and calls nobody finishes give them back.

The race: one client streams a long answer (three times the TTL) whose worst case holds most of a small
block budget, while a second client, with a ledger of its own on the same store (another process, as far
as the store can tell), sends small calls as fast as it can. Without renewal the stream's hold expires
under it, the second client is admitted into that capacity, and when the stream settles the budget ends
far over its limit. With renewal the second client is refused once the stream's worst case and its own
calls fill the budget, and the spend stays at or under the limit.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import boto3
import pytest

import bedrock_budget as bb
from backends import Backend
from bedrock_budget.budgets import Ledger
from bedrock_budget.testing import FakeBedrock, UsageSpec
from polling import holds_for, wait_until

from .conftest import HAIKU, MESSAGES, NANOS_PER_USD, Records, recorded_nanos

SONNET = "anthropic.claude-3-5-sonnet-20241022-v2:0"
SLOW = f"us.{SONNET}"
TTL = 2.0
CALL_SECONDS = 3 * TTL
LIMIT = Decimal("0.02")


def _client(fake: FakeBedrock) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=fake.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def long_call_budgets() -> list[bb.Budget]:
    # Two counters per call (in different slots on a cluster), so renewal covers every counter of a hold.
    return [
        bb.Budget("org", window="lifetime", limit_usd=str(LIMIT)),
        bb.Budget("per-user", window="lifetime", scope={"user": "*"}, limit_usd="5"),
    ]


@pytest.mark.slow
@pytest.mark.backends("memory", "redis", "cluster")
def test_a_call_three_times_the_ttl_keeps_its_hold_and_the_budget_holds(
    fake: FakeBedrock, backend: Backend
) -> None:
    # The stream's actual usage is its worst case: the input estimate of a short prompt is above 10
    # tokens, and the answer uses all of maxTokens.
    fake.set_usage(SLOW, UsageSpec(input_tokens=10, output_tokens=1000))
    fake.set_usage(HAIKU, UsageSpec(input_tokens=10, output_tokens=50))
    fake.configure(SLOW, latency=CALL_SECONDS, stream_deltas=12)
    streamer_records, racer_records = Records(), Records()
    # Two ledgers on stores sharing one namespace, like two processes pointed at the same URI.
    streamer = Ledger(backend.make(), long_call_budgets(), reservation_ttl=TTL)
    racer = Ledger(backend.make(), long_call_budgets(), reservation_ttl=TTL)
    long_client = bb.wrap(
        _client(fake), ledger=streamer, listeners=[streamer_records], attribution={"user": "writer"}
    )
    racing_client = bb.wrap(
        _client(fake), ledger=racer, listeners=[racer_records], attribution={"user": "racer"}
    )
    try:
        # The fake paces the stream over CALL_SECONDS from the moment the request reaches it, so a clock
        # started before the request measures the whole call, however long the call takes to start.
        started = time.monotonic()
        response = long_client.converse_stream(
            modelId=SLOW, messages=MESSAGES, inferenceConfig={"maxTokens": 1000}
        )
        held = racer.read("org")
        assert held.reserved_usd > Decimal("0.015")  # the stream's worst case
        done = threading.Event()

        def read_stream() -> None:
            for _ in response["stream"]:
                pass
            done.set()

        reader = threading.Thread(target=read_stream)
        reader.start()
        admitted = refused = 0
        while not done.is_set():
            try:
                racing_client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 50})
                admitted += 1
            except bb.BudgetExceededError:
                refused += 1
                time.sleep(0.01)
        reader.join(30)
        elapsed = time.monotonic() - started
        streamer.flush()
        racer.flush()
        final = racer.read("org")
        assert elapsed >= CALL_SECONDS - 0.01, elapsed  # the call really outlived the TTL three times
        assert [r.outcome for r in streamer_records] == ["ok"]
        assert admitted > 0
        assert refused > 0
        # Everything the racer was admitted into fit beside the stream's hold, all the way through.
        assert recorded_nanos(racer_records) <= (LIMIT - held.reserved_usd) * NANOS_PER_USD
        assert final.reserved_usd == 0
        assert final.spent_usd <= LIMIT
        spent = recorded_nanos(streamer_records) + recorded_nanos(racer_records)
        assert final.spent_usd * NANOS_PER_USD == spent
        assert streamer.holds_renewed >= 2
    finally:
        streamer.close()
        racer.close()


@pytest.mark.slow
def test_a_leaked_unread_stream_gives_its_capacity_back_after_the_maximum_call_lifetime(
    fake: FakeBedrock, records: Records
) -> None:
    fake.set_usage(SLOW, UsageSpec(input_tokens=10, output_tokens=1000))
    fake.configure(SLOW, latency=60.0, stream_deltas=3)  # the first event at once, the rest over a minute
    lifetime = 2.5
    # Configured the way a user would: through wrap()'s keywords.
    client = bb.wrap(
        _client(fake),
        store="memory://",
        budgets=[bb.Budget("org", window="lifetime", limit_usd=str(LIMIT))],
        reservation_ttl=1.0,
        max_call_seconds=lifetime,
        listeners=[records],
    )
    ledger: Ledger = client.bedrock_budget_meter.guard.ledger
    assert ledger.max_call_seconds == lifetime
    try:
        started = time.monotonic()
        stream = client.converse_stream(modelId=SLOW, messages=MESSAGES, inferenceConfig={"maxTokens": 1000})[
            "stream"
        ]
        next(iter(stream))  # read one event, then keep the stream without reading or closing it
        worst = ledger.read("org").reserved_usd
        assert worst > 0
        # Past the TTL the hold is renewed: the call still counts, at every check until then.
        holds_for(
            lambda: ledger.read("org").reserved_usd == worst and records == [],
            1.6,
            message="the unread stream's hold (renewed past the TTL)",
        )
        assert ledger.holds_renewed >= 1
        wait_until(
            lambda: ledger.read("org").reserved_usd == 0,
            lifetime + 5,
            message=lambda: f"the leaked stream's hold to be given back (the store has {ledger.read('org')})",
        )
        given_back = time.monotonic() - started
        status = ledger.read("org")
        assert status.reserved_usd == 0
        assert lifetime <= given_back <= lifetime + 1.5
        # Settled once, at what was held: nobody read it, but Bedrock may have generated all of it.
        assert status.spent_usd == worst
        (record,) = records
        assert record.outcome == "partial"
        assert record.estimated
        assert record.cost is not None
        assert record.cost.total_nanos == worst * NANOS_PER_USD
        assert ledger.overdue_calls == 1
        # Reading or closing it later changes nothing: it was settled once.
        stream.close()
        assert len(records) == 1
        assert ledger.read("org").spent_usd == worst
        del stream
    finally:
        ledger.close()
