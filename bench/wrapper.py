"""Wrapper overhead per call without budgets: the same boto3 client with and without ``bb.wrap``, served by
botocore's Stubber (no HTTP, so the overhead is most visible) and by the local fake Bedrock (real HTTP).

Plain and wrapped calls alternate in short blocks, so drift on a shared machine hits both sides alike, and
Stubber blocks are timed in process CPU time, which a busy neighbour does not inflate (the fake-server path
waits on a socket and is timed by the wall clock). Each side's figure is the median of its blocks; the
ratio is the median of the paired block ratios. Run alone: ``.venv/bin/python bench/wrapper.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.stub import Stubber
from prometheus_client import CollectorRegistry

import bedrock_budget as bb
from bedrock_budget.metrics import PrometheusListener
from bedrock_budget.records import CallRecord, PlainCallObserver
from bedrock_budget.testing import FakeBedrock, UsageSpec
from report import Row, median, render

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Summarise the quarterly report in one line."}]}]
RESPONSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Revenue grew."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 1200, "outputTokens": 40, "totalTokens": 1240},
    "metrics": {"latencyMs": 120},
}
TARGET_RATIO = 1.05
PROMETHEUS_TARGET_RATIO = 1.10


def stub_client() -> Any:
    return boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _block_us(call: Callable[[], Any], calls: int, clock: Callable[[], float]) -> float:
    started = clock()
    for _ in range(calls):
        call()
    return (clock() - started) / calls * 1e6


def paired(
    plain: Callable[[], Any],
    wrapped: Callable[[], Any],
    calls: int,
    rounds: int,
    clock: Callable[[], float],
    before_block: Callable[[int], None] = lambda calls: None,
) -> tuple[float, float, float]:
    """Median plain us, median wrapped us and the median of the paired ratios."""
    samples: dict[str, list[float]] = {"plain": [], "wrapped": []}
    for round_ in range(rounds + 1):
        for name, target in (("plain", plain), ("wrapped", wrapped)):
            before_block(calls)
            us = _block_us(target, calls, clock)
            if round_:  # the first round only warms caches
                samples[name].append(us)
    ratios = [w / p for p, w in zip(samples["plain"], samples["wrapped"], strict=True)]
    return median(samples["plain"]), median(samples["wrapped"]), median(ratios)


def stubber_pair(wrapped_config: dict[str, Any], calls: int, rounds: int) -> tuple[float, float, float]:
    client = stub_client()
    wrapped = bb.wrap(client, **wrapped_config)
    with Stubber(client) as stubber:

        def queue(calls: int) -> None:
            for _ in range(calls):
                stubber.add_response("converse", RESPONSE)

        return paired(
            lambda: client.converse(modelId=MODEL, messages=MESSAGES),
            lambda: wrapped.converse(modelId=MODEL, messages=MESSAGES),
            calls,
            rounds,
            time.process_time,
            queue,
        )


def fake_pair(calls: int, rounds: int) -> tuple[float, float, float]:
    with FakeBedrock() as fake:
        fake.set_usage("*", UsageSpec(input_tokens=1200, output_tokens=40))
        client = fake.client()
        wrapped = bb.wrap(client, listeners=[])
        return paired(
            lambda: client.converse(modelId=MODEL, messages=MESSAGES),
            lambda: wrapped.converse(modelId=MODEL, messages=MESSAGES),
            calls,
            rounds,
            time.perf_counter,
        )


def _ignore(record: CallRecord) -> None:
    return None


class IgnoredPlainCall(PlainCallObserver):
    """A listener taking plain calls as a PrometheusListener does, and doing nothing with them."""

    def __call__(self, record: CallRecord) -> None:
        return None

    def observe_plain_call(self, *figures: object) -> None:
        return None


def run() -> list[Row]:
    rows = []
    plain, wrapped, ratio = stubber_pair({"listeners": []}, calls=200, rounds=40)
    rows.append(
        Row(
            "wrapper: converse via Stubber, no budgets",
            wrapped,
            "us",
            plain,
            "same client unwrapped",
            f"ratio <= {TARGET_RATIO:g}",
            ratio <= TARGET_RATIO,
            note=f"overhead {wrapped - plain:.1f} us per call; ratio is the median of paired block ratios",
            paired_ratio=ratio,
        )
    )
    plain, wrapped, ratio = stubber_pair({"listeners": [_ignore]}, calls=200, rounds=25)
    rows.append(
        Row(
            "wrapper: converse via Stubber, + a listener",
            wrapped,
            "us",
            plain,
            "same client unwrapped",
            note=f"overhead {wrapped - plain:.1f} us per call (each call builds its CallRecord)",
            paired_ratio=ratio,
        )
    )
    # The PrometheusListener's calls without its metrics: what the pipeline's stages for a plain-call
    # observer (extract, price, dispatch) cost apart from the observer's own work.
    plain, wrapped, ratio = stubber_pair({"listeners": [IgnoredPlainCall()]}, calls=200, rounds=25)
    rows.append(
        Row(
            "wrapper: converse via Stubber, + a plain-call observer",
            wrapped,
            "us",
            plain,
            "same client unwrapped",
            note=f"overhead {wrapped - plain:.1f} us per call (usage read and priced; no metrics)",
            paired_ratio=ratio,
        )
    )
    plain, wrapped, ratio = stubber_pair(
        {"listeners": [PrometheusListener(registry=CollectorRegistry())]}, calls=200, rounds=25
    )
    rows.append(
        Row(
            "wrapper: converse via Stubber, + PrometheusListener",
            wrapped,
            "us",
            plain,
            "same client unwrapped",
            f"ratio <= {PROMETHEUS_TARGET_RATIO:g}",
            ratio <= PROMETHEUS_TARGET_RATIO,
            note=f"overhead {wrapped - plain:.1f} us per call (the configuration most users run)",
            paired_ratio=ratio,
        )
    )
    plain, wrapped, ratio = fake_pair(calls=100, rounds=12)
    rows.append(
        Row(
            "wrapper: converse via fake Bedrock (HTTP)",
            wrapped,
            "us",
            plain,
            "same client unwrapped",
            note=f"overhead {wrapped - plain:.1f} us per call",
            paired_ratio=ratio,
        )
    )
    return rows


if __name__ == "__main__":
    print(render(run()))
