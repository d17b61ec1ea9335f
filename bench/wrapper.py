"""Wrapper overhead per call (no budgets): the same boto3 client with and without ``bb.wrap``, served by
botocore's Stubber (no HTTP: the overhead is most visible) and by the local fake Bedrock (real HTTP).

Run: ``make bench`` (or ``.venv/bin/python bench/wrapper.py``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.stub import Stubber

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock, UsageSpec

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Summarise the quarterly report in one line."}]}]
RESPONSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Revenue grew."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 1200, "outputTokens": 40, "totalTokens": 1240},
    "metrics": {"latencyMs": 120},
}


def _timed(call: Callable[[], Any], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def stubber_pair(calls: int, rounds: int) -> tuple[float, float]:
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    wrapped = bb.wrap(client, listeners=[])
    plain_samples: list[float] = []
    wrapped_samples: list[float] = []
    with Stubber(client) as stubber:
        for _ in range(rounds):
            # Interleave so drift on a shared machine hits both sides alike.
            for target, samples in ((client, plain_samples), (wrapped, wrapped_samples)):
                for _ in range(calls):
                    stubber.add_response("converse", RESPONSE)
                samples.append(_timed(lambda t=target: t.converse(modelId=MODEL, messages=MESSAGES), calls))
    return statistics.median(plain_samples), statistics.median(wrapped_samples)


def fake_pair(calls: int, rounds: int) -> tuple[float, float]:
    with FakeBedrock() as fake:
        fake.set_usage("*", UsageSpec(input_tokens=1200, output_tokens=40))
        client = fake.client()
        wrapped = bb.wrap(client, listeners=[])
        plain_samples: list[float] = []
        wrapped_samples: list[float] = []
        for _ in range(rounds):
            for target, samples in ((client, plain_samples), (wrapped, wrapped_samples)):
                samples.append(_timed(lambda t=target: t.converse(modelId=MODEL, messages=MESSAGES), calls))
        return statistics.median(plain_samples), statistics.median(wrapped_samples)


def main() -> None:
    print(f"{'wrapper overhead (median us/call)':<42}{'plain':>10}{'wrapped':>10}{'ratio':>8}  note")
    plain, wrapped = stubber_pair(calls=2000, rounds=7)
    label = "converse via Stubber (no HTTP)"
    print(f"{label:<42}{plain:>10.1f}{wrapped:>10.1f}{wrapped / plain:>8.3f}  target <= 1.05")
    plain, wrapped = fake_pair(calls=300, rounds=5)
    print(f"{'converse via fake Bedrock (HTTP)':<42}{plain:>10.1f}{wrapped:>10.1f}{wrapped / plain:>8.3f}")


if __name__ == "__main__":
    main()
