"""Async wrapper overhead per call without budgets: the same aiobotocore client awaited with and without
``bb.wrap``, against the local fake Bedrock over HTTP, one call at a time and 20 at once.

Plain and wrapped calls alternate in short blocks on one event loop, so drift on a shared machine hits both
sides alike; each side's figure is the median of its blocks, the ratio the median of the paired block
ratios. aiobotocore pins its own botocore, so this runs in ``.venv-async`` (``bash .ci/async-venv.sh``
builds it): from the main venv, ``run()`` runs this file there and reads its rows back.
Run alone: ``.venv-async/bin/python bench/async_wrapper.py``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from report import Row, median, render

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Summarise the quarterly report in one line."}]}]
TARGET_RATIO = 1.05
ASYNC_VENV = Path(__file__).resolve().parent.parent / ".venv-async" / "bin" / "python"


RESPONSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Revenue grew."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 1200, "outputTokens": 40, "totalTokens": 1240},
    "metrics": {"latencyMs": 120},
}
Clock = Callable[[], float]


async def _block_us(
    call: Callable[[], Awaitable[Any]], calls: int, concurrency: int, clock: Clock = time.perf_counter
) -> float:
    started = clock()
    for _ in range(calls // concurrency):
        if concurrency == 1:
            await call()
        else:
            await asyncio.gather(*(call() for _ in range(concurrency)))
    return (clock() - started) / calls * 1e6


async def _paired(
    plain: Callable[[], Awaitable[Any]],
    wrapped: Callable[[], Awaitable[Any]],
    calls: int,
    rounds: int,
    concurrency: int,
    clock: Clock = time.perf_counter,
    before_block: Callable[[int], None] = lambda calls: None,
) -> tuple[float, float, float]:
    samples: dict[str, list[float]] = {"plain": [], "wrapped": []}
    for round_ in range(rounds + 1):
        for name, target in (("plain", plain), ("wrapped", wrapped)):
            before_block(calls)
            us = await _block_us(target, calls, concurrency, clock)
            if round_:  # the first round only warms caches and connections
                samples[name].append(us)
    ratios = [w / p for p, w in zip(samples["plain"], samples["wrapped"], strict=True)]
    return median(samples["plain"]), median(samples["wrapped"]), median(ratios)


async def _over_http(
    listeners: list[Any], concurrency: int, calls: int, rounds: int
) -> tuple[float, float, float]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    import bedrock_budget as bb
    from bedrock_budget.testing import FakeBedrock, UsageSpec

    with FakeBedrock() as fake:
        fake.set_usage("*", UsageSpec(input_tokens=1200, output_tokens=40))
        context = get_session().create_client(
            "bedrock-runtime",
            endpoint_url=fake.endpoint_url,
            region_name=fake.region,
            aws_access_key_id="x",
            aws_secret_access_key="y",
            config=AioConfig(max_pool_connections=max(10, concurrency)),
        )
        async with context as client:
            wrapped = bb.wrap(client, listeners=listeners)
            return await _paired(
                lambda: client.converse(modelId=MODEL, messages=MESSAGES),
                lambda: wrapped.converse(modelId=MODEL, messages=MESSAGES),
                calls,
                rounds,
                concurrency,
            )


async def _stubbed(calls: int, rounds: int) -> tuple[float, float, float]:
    """No HTTP: aiobotocore's Stubber answers, so the wrapper's own cost is most visible (CPU time)."""
    from aiobotocore.session import get_session
    from aiobotocore.stub import AioStubber

    import bedrock_budget as bb

    context = get_session().create_client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    async with context as client:
        wrapped = bb.wrap(client, listeners=[])
        with AioStubber(client) as stubber:

            def queue(calls: int) -> None:
                for _ in range(calls):
                    stubber.add_response("converse", RESPONSE)

            return await _paired(
                lambda: client.converse(modelId=MODEL, messages=MESSAGES),
                lambda: wrapped.converse(modelId=MODEL, messages=MESSAGES),
                calls,
                rounds,
                1,
                time.process_time,
                queue,
            )


def _ignore(record: Any) -> None:
    return None


def measure() -> list[Row]:
    rows = []
    plain, wrapped, ratio = asyncio.run(_stubbed(calls=200, rounds=25))
    rows.append(
        Row(
            "async wrapper: converse via AioStubber, no listener",
            wrapped,
            "us",
            plain,
            "same aiobotocore client unwrapped",
            note=f"overhead {wrapped - plain:.1f} us per call (CPU time, no HTTP)",
            paired_ratio=ratio,
        )
    )
    for label, listeners, concurrency, calls, rounds, target in (
        ("no listener", [], 1, 60, 12, True),
        ("+ a listener", [_ignore], 1, 60, 12, False),
        ("20 at once, + a listener", [_ignore], 20, 200, 10, False),
    ):
        plain, wrapped, ratio = asyncio.run(_over_http(listeners, concurrency, calls, rounds))
        rows.append(
            Row(
                f"async wrapper: converse via fake Bedrock (HTTP), {label}",
                wrapped,
                "us",
                plain,
                "same aiobotocore client unwrapped",
                f"ratio <= {TARGET_RATIO:g}" if target else "",
                ratio <= TARGET_RATIO if target else None,
                note=f"overhead {wrapped - plain:.1f} us per call; the ratio is the median of paired blocks",
                paired_ratio=ratio,
            )
        )
    return rows


def run() -> list[Row]:
    """Measure here if aiobotocore is installed, otherwise in .venv-async."""
    try:
        import aiobotocore  # noqa: F401
    except ImportError:
        pass
    else:
        return measure()
    if not ASYNC_VENV.exists():
        raise RuntimeError(f"{ASYNC_VENV} is missing: build it with `bash .ci/async-venv.sh`")
    done = subprocess.run(
        [str(ASYNC_VENV), __file__, "--json"], capture_output=True, text=True, check=True, timeout=600
    )
    return [Row(**fields) for fields in json.loads(done.stdout)]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    measured = measure()
    if "--json" in sys.argv:
        print(json.dumps([asdict(row) for row in measured]))
    else:
        print(render(measured))
