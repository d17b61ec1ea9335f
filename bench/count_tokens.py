"""What ``count_tokens=True`` costs per call: Bedrock's CountTokens is one more round trip on a cache miss
and a hash of the request on a hit. Real boto3 over HTTP to the local fake Bedrock, with a budget on the
memory store; three wrapped clients alternate in short blocks (no CountTokens, a new prompt every call, the
same prompt every call) and each figure is the median of its blocks. The fake answers in well under a
millisecond, so the miss row is the client-side cost of the extra call; against AWS add one CountTokens
round trip (tens of milliseconds from inside the Region).

Run alone: ``.venv/bin/python bench/count_tokens.py``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock, UsageSpec
from report import Row, median, render

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
PROMPT = "Summarise this function:\n" + "def f(x):\n    return [i * x for i in range(10)]\n" * 40


def _client(fake: FakeBedrock, count_tokens: bool) -> Any:
    return bb.wrap(
        fake.client(),
        budgets=[bb.Budget(name="all", scope={}, window="day", limit_usd="1000000")],
        count_tokens=count_tokens,
    )


def _call(client: Any, text: str) -> None:
    client.converse(
        modelId=MODEL,
        messages=[{"role": "user", "content": [{"text": text}]}],
        inferenceConfig={"maxTokens": 64},
    )


def run(calls: int = 40, rounds: int = 8) -> list[Row]:
    with FakeBedrock() as fake:
        fake.set_usage("*", UsageSpec(input_tokens=900, output_tokens=40))
        plain, counted = _client(fake, False), _client(fake, True)
        serial = itertools.count()
        sides: dict[str, Callable[[], None]] = {
            "off": lambda: _call(plain, PROMPT),
            "miss": lambda: _call(counted, f"{PROMPT}#{next(serial)}"),
            "hit": lambda: _call(counted, PROMPT),
        }
        samples: dict[str, list[float]] = {name: [] for name in sides}
        for round_ in range(rounds + 1):
            for name, call in sides.items():
                started = time.perf_counter()
                for _ in range(calls):
                    call()
                if round_:  # the first round warms connections and caches
                    samples[name].append((time.perf_counter() - started) / calls * 1e6)
    off = median(samples["off"])
    rows = []
    for name, label in (("miss", "a new prompt every call"), ("hit", "the same prompt (cached count)")):
        value = median(samples[name])
        rows.append(
            Row(
                f"count_tokens: converse via fake Bedrock, {label}",
                value,
                "us",
                off,
                "count_tokens off",
                note=f"+{value - off:.0f} us per call",
            )
        )
    return rows


if __name__ == "__main__":
    print(render(run()))
