"""Alert sinks fired from the async path never stall the event loop: a webhook whose endpoint never answers,
a callback that blocks, and a webhook that answers, all fired while calls run; the loop's longest stall
stays far below the time those sinks block, and every alert is still delivered."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import bedrock_budget as bb
from bedrock_budget.alerts import Alert, WebhookSink
from bedrock_budget.alerts.loop_safe import ThreadedSink, loop_safe
from bedrock_budget.testing import FakeBedrock, UsageSpec
from budgets.test_alert_sinks import Receiver
from conftest import HAIKU, Records, converse, run, wrapped

BLOCK = 0.5


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    server.close()


async def longest_stall(stop: asyncio.Event) -> float:
    worst = 0.0
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        worst = max(worst, time.perf_counter() - before - 0.001)
    return worst


def test_sinks_that_block_do_not_stall_the_loop(
    fake: FakeBedrock, records: Records, silent_endpoint: str
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))
    receiver = Receiver([])
    slow_calls: list[Alert] = []
    delivered = threading.Event()

    def slow_callback(alert: Alert) -> None:
        time.sleep(BLOCK)  # a user's sink doing blocking I/O
        slow_calls.append(alert)
        delivered.set()

    silent = WebhookSink(silent_endpoint, timeout=BLOCK, retries=1, backoff=0.01)
    answered = WebhookSink(receiver.url, retries=0)
    # Thresholds every few calls, so alerts fire while calls are in flight.
    budget = bb.Budget("alerting", limit_usd="0.0006", thresholds=[10, 20, 30, 40, 50, 60, 70, 80, 90])
    stall = 0.0

    async def main() -> None:
        nonlocal stall
        async with wrapped(
            fake, records, budgets=[budget], alert_sinks=[slow_callback, silent, answered]
        ) as client:
            stop = asyncio.Event()
            sampler = asyncio.create_task(longest_stall(stop))
            for _ in range(8):
                await asyncio.gather(*(converse(client) for _ in range(2)), return_exceptions=True)
                await client.bedrock_budget_meter.guard.ledger.flush()
            await asyncio.sleep(0.05)
            stop.set()
            stall = await sampler
            ledger = client.bedrock_budget_meter.guard.ledger
            fired = ledger.alerts_fired
            assert fired >= 3
            await ledger.aclose()  # closes the sinks in a worker thread: they deliver what is queued
            assert len(slow_calls) == fired
            assert len(receiver.bodies) == fired
            assert silent.failed == fired

    try:
        run(main())
    finally:
        receiver.close()
    # Each blocking delivery takes BLOCK seconds or more; none of it happened on the loop.
    assert stall < BLOCK / 5
    assert delivered.is_set()


def test_loop_safe_keeps_background_sinks_and_threads_the_others(silent_endpoint: str) -> None:
    webhook = WebhookSink(silent_endpoint)
    assert loop_safe(webhook) is webhook
    wrapped_callback = loop_safe(lambda alert: None)
    assert isinstance(wrapped_callback, ThreadedSink)
    wrapped_callback.close()
