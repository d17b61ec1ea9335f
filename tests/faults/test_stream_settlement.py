"""Streams settle exactly once, however they end, against a real Redis store.

Every test ends with the same audit: the store's spend equals the sum of the call records (each record's
``cost.total_nanos``), nothing is held any more, and there is exactly one record per stream.
"""

from __future__ import annotations

import gc
import queue
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import EventStreamError

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.pricing import default_price_table
from bedrock_budget.stores import from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records

from .conftest import HAIKU, MESSAGES, NANOS_PER_USD, recorded_nanos

pytestmark = pytest.mark.redis

USAGE = UsageSpec(input_tokens=120, output_tokens=30)
FULL_COST = default_price_table().price(HAIKU, bb.Usage(input_tokens=120, output_tokens=30))


@pytest.fixture
def ledger(redis_url: str, prefix: str, ledgers: Callable[[Ledger], Ledger]) -> Ledger:
    return ledgers(
        Ledger(from_uri(redis_url, prefix=prefix), [bb.Budget("all", window="lifetime", limit_usd="100")])
    )


@pytest.fixture
def client(fake: FakeBedrock, ledger: Ledger, records: Records) -> Any:
    fake.set_usage(HAIKU, USAGE)
    return bb.wrap(fake.client(), ledger=ledger, listeners=[records])


def open_stream(client: Any, operation: str = "converse_stream") -> Any:
    if operation == "converse_stream":
        return client.converse_stream(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 50})
    body = (
        '{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, '
        '"messages": [{"role": "user", "content": "Write one short line about rivers."}]}'
    )
    return client.invoke_model_with_response_stream(modelId=HAIKU, body=body)["body"]


def audit(ledger: Ledger, records: Records, streams: int) -> None:
    gc.collect()
    assert len(records) == streams, [r.outcome for r in records]
    status = ledger.read("all")
    assert status.spent_usd * NANOS_PER_USD == recorded_nanos(records)
    assert status.reserved_usd == 0
    assert status.active_reservations == 0


def test_read_to_the_end(client: Any, ledger: Ledger, records: Records) -> None:
    for _ in open_stream(client)["stream"]:
        pass
    for _ in open_stream(client, "invoke_model_with_response_stream"):
        pass
    audit(ledger, records, 2)
    assert [r.cost for r in records] == [FULL_COST, FULL_COST]
    assert not any(r.partial or r.estimated for r in records)


def test_break_then_resume_is_charged_for_everything_read(
    client: Any, ledger: Ledger, records: Records
) -> None:
    # Leaving a for-loop is not abandoning the stream: botocore lets the caller carry on reading it.
    stream = open_stream(client)["stream"]
    for _ in stream:
        break
    assert records == []
    rest = list(stream)
    assert rest[-1].keys() == {"metadata"}
    audit(ledger, records, 1)
    (record,) = records
    assert record.outcome == "ok"
    assert record.cost == FULL_COST


def test_closed_early_twice(client: Any, ledger: Ledger, records: Records) -> None:
    stream = open_stream(client)["stream"]
    next(iter(stream))
    stream.close()
    stream.close()
    audit(ledger, records, 1)
    assert records[0].outcome == "partial"
    assert records[0].cost is not None
    assert records[0].cost.total_nanos > 0


# An abandoned botocore stream leaves its HTTP socket to the garbage collector, wrapped or not.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_abandoned_unread_and_midway(client: Any, ledger: Ledger, records: Records) -> None:
    response = open_stream(client)
    del response
    iterator = iter(open_stream(client)["stream"])
    next(iterator)
    del iterator
    audit(ledger, records, 2)
    assert all(r.partial for r in records)


@pytest.mark.parametrize("operation", ["converse_stream", "invoke_model_with_response_stream"])
def test_failing_midway(
    fake: FakeBedrock, client: Any, ledger: Ledger, records: Records, operation: str
) -> None:
    fake.fail_mid_stream(2, operation=operation, error="modelStreamErrorException")
    response = open_stream(client, operation)
    stream = response["stream"] if operation == "converse_stream" else response
    with pytest.raises(EventStreamError):
        for _ in stream:
            pass
    stream.close()
    audit(ledger, records, 1)
    (record,) = records
    assert record.partial
    assert record.error_code == "modelStreamErrorException"
    assert record.cost is not None
    assert record.cost.total_nanos > 0


def test_created_in_one_thread_consumed_in_another(client: Any, ledger: Ledger, records: Records) -> None:
    handed: queue.Queue[Any] = queue.Queue()
    events: list[dict[str, Any]] = []
    producer = threading.Thread(target=lambda: handed.put(open_stream(client)["stream"]))
    consumer = threading.Thread(target=lambda: events.extend(handed.get(timeout=10)))
    producer.start()
    consumer.start()
    producer.join(10)
    consumer.join(10)
    assert events[-1].keys() == {"metadata"}
    audit(ledger, records, 1)
    assert records[0].cost == FULL_COST


def test_closed_by_one_thread_while_another_reads(
    fake: FakeBedrock, client: Any, ledger: Ledger, records: Records
) -> None:
    # A slow stream: eight events spread over two seconds.
    fake.configure(HAIKU, latency=2.0, stream_deltas=4)
    stream = open_stream(client)["stream"]
    first = threading.Event()
    outcome: list[object] = []

    def read() -> None:
        try:
            for _ in stream:
                first.set()
            outcome.append("ended")
        except Exception as exc:  # the connection was closed under the reader: any error is the caller's
            outcome.append(exc)
        finally:
            first.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert first.wait(10)
    closers = [threading.Thread(target=stream.close) for _ in range(3)]
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join(10)
    reader.join(10)
    assert not reader.is_alive()
    assert outcome
    audit(ledger, records, 1)
    assert records[0].outcome == "partial"


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_many_concurrent_streams_with_every_fate(
    fake: FakeBedrock, client: Any, ledger: Ledger, records: Records
) -> None:
    fake.fail_mid_stream(3, operation="converse_stream", times=6)
    fates = ["read", "close", "break", "drop", "fail-or-read", "hand-over", "iterate-one"]
    threads, per_thread = 8, 7
    handed: queue.Queue[Any] = queue.Queue()

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for index in range(per_thread):
            fate = fates[(seed + index) % len(fates)]
            stream = open_stream(client, rng.choice(["converse_stream", "converse_stream", "invoke"]))
            if isinstance(stream, dict):
                stream = stream["stream"]
            try:
                if fate in ("read", "fail-or-read"):
                    for _ in stream:
                        pass
                elif fate == "close":
                    next(iter(stream))
                    stream.close()
                elif fate == "break":
                    for _ in stream:
                        break
                elif fate == "hand-over":
                    handed.put(stream)
                elif fate == "iterate-one":
                    next(iter(stream))
            except EventStreamError:
                pass
            del stream

    def drain() -> None:
        for _ in range(threads):
            stream = handed.get(timeout=30)
            try:
                for _ in stream:
                    pass
            except EventStreamError:
                pass

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(threads)]
    drainer = threading.Thread(target=drain)
    drainer.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    drainer.join(60)
    assert not any(w.is_alive() for w in [*workers, drainer])
    audit(ledger, records, threads * per_thread)
    assert sum(r.outcome == "ok" for r in records) >= threads * 2
