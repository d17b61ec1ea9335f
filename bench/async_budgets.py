"""Budgets on async clients: the longest event-loop stall our code causes, and the async Redis hot path.

1. Loop stalls under 1,000 concurrent calls. 1,000 tasks each make one budgeted ``converse`` through a
   wrapped aiobotocore client (budgets on the real Redis), against the fake Bedrock running in *another
   process* (so its CPU is not ours). Every loop callback is counted (``asyncio.events.Handle._run``), and
   every synchronous entry point of our code that runs on the loop is timed (preparing the call, the
   estimate, building the reserve call and reading its reply, interpreting it, applying the decision,
   metering the response and queueing its settlement, building and reading a settlement batch): the time
   our code spends inside one loop callback is how long it keeps the loop from everything else. The row
   is the longest such stretch (goal < 1 ms), with its 99th percentile. A loop-lag sampler (a task that
   sleeps 1 ms and measures how late it wakes) gives the loop's latency as any task sees it, for the same
   1,000 calls unwrapped and wrapped: that includes aiobotocore's own work, shared by both.
2. The awaited reserve of the async ledger on Redis (two budgets, the settlement queued for the loop task)
   against one raw async EVALSHA of a trivial script on the same connection pool, interleaved.

aiobotocore pins its own botocore, so this runs in ``.venv-async`` like ``async_wrapper.py``.
Run alone: ``.venv-async/bin/python bench/async_budgets.py`` (needs Redis on 127.0.0.1:6379).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from report import Row, median, render

CALLS = 1000
MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Summarise the quarterly report in one line."}]}]
REDIS_URL = "redis://127.0.0.1:6379/0"
ASYNC_VENV = Path(__file__).resolve().parent.parent / ".venv-async" / "bin" / "python"
STALL_TARGET_US = 1000.0


def _serve(endpoint: Any, stop: Any) -> None:
    from bedrock_budget.testing import FakeBedrock, UsageSpec

    with FakeBedrock() as fake:
        fake.set_usage("*", UsageSpec(input_tokens=1200, output_tokens=40))
        endpoint.put(fake.endpoint_url)
        stop.wait()


@contextmanager
def fake_in_another_process() -> Iterator[str]:
    context = multiprocessing.get_context("spawn")
    endpoint, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(endpoint, stop), daemon=True)
    server.start()
    try:
        yield endpoint.get(timeout=60)
    finally:
        stop.set()
        server.join(10)
        if server.is_alive():
            server.kill()


class StallMeter:
    """Our code's time inside each loop callback (see the module docstring)."""

    def __init__(self) -> None:
        self.step = 0
        self.ours: dict[int, float] = defaultdict(float)
        #: The longest single run of each timed entry point (µs), to say where a long stall came from.
        self.longest: dict[str, float] = defaultdict(float)
        self._depth = 0
        self._undo: list[tuple[Any, str, Any]] = []
        self.gc_seconds = 0.0
        self.longest_gc = 0.0
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            pause = time.thread_time() - self._gc_started
            self.gc_seconds += pause
            self.longest_gc = max(self.longest_gc, pause)

    def install(self) -> None:
        from bedrock_budget.budgets.async_settling import AsyncSettler
        from bedrock_budget.budgets.enforcement import BudgetGuard
        from bedrock_budget.budgets.ledger_core import LedgerCore
        from bedrock_budget.budgets.settler import Settler
        from bedrock_budget.stores.redis.script_calls import ScriptCalls
        from bedrock_budget.wrapper.meter import Meter
        from bedrock_budget.wrapper.streams import StreamSettlement

        handle = asyncio.events.Handle
        original_run = handle._run
        meter = self

        def counted_run(self: Any) -> None:
            meter.step += 1
            original_run(self)

        self._patch(handle, "_run", counted_run)
        gc.callbacks.append(self._on_gc)
        for owner, name in (
            (Meter, "prepare"),
            (Meter, "apply_admission"),
            (Meter, "completed"),
            (Meter, "abort"),
            (BudgetGuard, "_estimate"),
            (BudgetGuard, "_report"),
            (LedgerCore, "_plan"),
            (LedgerCore, "_interpret"),
            (ScriptCalls, "_reserve_call"),
            (ScriptCalls, "_reserve_reply"),
            (ScriptCalls, "_settle_call"),
            (ScriptCalls, "_settle_reply"),
            (AsyncSettler, "_enqueue"),
            (Settler, "batch_applied"),
            (StreamSettlement, "feed"),
            (StreamSettlement, "finish"),
        ):
            self._patch(owner, name, self._timed(owner.__dict__[name]))

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._undo.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, replacement)

    def _timed(self, function: Any) -> Any:
        inner = function.__func__ if isinstance(function, staticmethod) else function
        meter = self

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if meter._depth:
                return inner(*args, **kwargs)
            meter._depth += 1
            started = time.thread_time()
            collected = meter.gc_seconds
            try:
                return inner(*args, **kwargs)
            finally:
                # CPU time of this thread (a busy machine preempting the process is not our code's stall),
                # less the garbage collector's pauses (counted apart: they fall wherever allocation does).
                spent = time.thread_time() - started - (meter.gc_seconds - collected)
                meter.ours[meter.step] += spent
                name = inner.__qualname__
                meter.longest[name] = max(meter.longest[name], spent * 1e6)
                meter._depth -= 1

        return staticmethod(timed) if isinstance(function, staticmethod) else timed

    def uninstall(self) -> None:
        gc.callbacks.remove(self._on_gc)
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)


async def _lag_sampler(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - before - 0.001)


async def _storm(
    endpoint: str, budgeted: bool, stalls: StallMeter | None, **ledger_options: Any
) -> tuple[list[float], float]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    import bedrock_budget as bb
    from bedrock_budget.budgets import AsyncLedger, Budget
    from services import delete_prefix, unique_prefix

    prefix = unique_prefix()
    budgets = [Budget("org", limit_usd="1000"), Budget("per-user", scope={"user": "*"}, limit_usd="10")]
    context = get_session().create_client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=AioConfig(max_pool_connections=100, retries={"total_max_attempts": 1}),
    )
    options: dict[str, Any] = {"store_options": {"prefix": prefix}, **ledger_options}
    ledger = AsyncLedger(REDIS_URL, budgets, **options) if budgeted else None
    try:
        async with context as raw:
            client = bb.wrap(raw, ledger=ledger) if ledger is not None else raw
            for _ in range(3):  # warm: connections, caches, scripts
                await client.converse(modelId=MODEL, messages=MESSAGES)

            async def one(i: int) -> None:
                with bb.attribute(user=f"u{i % 50}"):
                    await client.converse(modelId=MODEL, messages=MESSAGES)

            lags: list[float] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(_lag_sampler(stop, lags))
            if stalls is not None:
                stalls.install()
            started = time.perf_counter()
            try:
                await asyncio.gather(*(one(i) for i in range(CALLS)))
                if ledger is not None:
                    await ledger.flush()
            finally:
                elapsed = time.perf_counter() - started
                if stalls is not None:
                    stalls.uninstall()
            stop.set()
            await sampler
    finally:
        if ledger is not None:
            await ledger.aclose()
            delete_prefix(REDIS_URL, prefix)
    return lags, elapsed


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


async def _hot_path(rounds: int = 2000) -> tuple[float, float]:
    """Median µs of the awaited reserve (+ queued settle) and of one raw async EVALSHA, interleaved."""
    import redis.asyncio as aioredis

    from bedrock_budget.budgets import AsyncLedger, Budget
    from services import delete_prefix, unique_prefix

    prefix = unique_prefix()
    budgets = [
        Budget("org", limit_usd="1000000"),
        Budget("per-user", scope={"user": "*"}, limit_usd="100000"),
    ]
    ledger = AsyncLedger(REDIS_URL, budgets, store_options={"prefix": prefix}, settle_linger=0)
    raw = aioredis.Redis.from_url(REDIS_URL)
    trivial = raw.register_script("return 1")
    attribution = {"user": "u-1", "app": "chat"}
    times: dict[str, list[float]] = {"reserve": [], "evalsha": []}
    try:
        for i in range(rounds + 50):
            started = time.perf_counter()
            await trivial(keys=[], args=[])
            evalsha = time.perf_counter() - started
            started = time.perf_counter()
            reservation = await ledger.reserve(
                attribution, "m", None, 5_000_000, {"input": 1200, "output": 512}
            )
            ledger.settle(reservation, 4_000_000, {"input": 1200, "output": 100})
            reserve = time.perf_counter() - started
            await (
                ledger.flush()
            )  # the batch goes out between timed calls, as it does while calls await Bedrock
            if i >= 50:
                times["evalsha"].append(evalsha * 1e6)
                times["reserve"].append(reserve * 1e6)
    finally:
        await ledger.aclose()
        await raw.aclose()
        delete_prefix(REDIS_URL, prefix)
    return median(times["reserve"]), median(times["evalsha"])


def _stall_row(stalls: StallMeter, elapsed: float, variant: str) -> Row:
    ours = [seconds * 1e6 for seconds in stalls.ours.values()]
    longest = max(ours)
    worst = sorted(stalls.longest.items(), key=lambda item: -item[1])[:3]
    print(f"longest single runs{variant}:", ", ".join(f"{n} {us:.0f} us" for n, us in worst), file=sys.stderr)
    return Row(
        f"async budgets: longest loop stall our code causes, {CALLS} concurrent calls (Redis{variant})",
        longest,
        "us",
        target=f"< {STALL_TARGET_US:g} us",
        met=longest < STALL_TARGET_US,
        note=(
            f"CPU time, p99 {_percentile(ours, 0.99):.0f} us, median {median(ours):.0f} us over "
            f"{len(ours)} loop callbacks running our code; GC pauses apart (longest "
            f"{stalls.longest_gc * 1e6:.0f} us, anywhere in the process); "
            f"{CALLS} calls in {elapsed:.2f} s"
        ),
    )


def measure() -> list[Row]:
    rows: list[Row] = []
    with fake_in_another_process() as endpoint:
        plain_lags, plain_elapsed = asyncio.run(_storm(endpoint, budgeted=False, stalls=None))
        stalls = StallMeter()
        lags, elapsed = asyncio.run(_storm(endpoint, budgeted=True, stalls=stalls))
        journalled_stalls = StallMeter()
        with tempfile.TemporaryDirectory() as journal:
            _, journalled_elapsed = asyncio.run(
                _storm(endpoint, budgeted=True, stalls=journalled_stalls, journal_path=journal)
            )
    rows.append(_stall_row(stalls, elapsed, ""))
    rows.append(_stall_row(journalled_stalls, journalled_elapsed, ", journal_path"))
    rows.append(
        Row(
            f"async budgets: loop lag seen by a task, {CALLS} concurrent calls, wrapped + budgets",
            max(lags) * 1e6,
            "us",
            max(plain_lags) * 1e6,
            "same calls unwrapped (max)",
            note=(
                f"p99 {_percentile(lags, 0.99) * 1e6:.0f} us wrapped vs "
                f"{_percentile(plain_lags, 0.99) * 1e6:.0f} us unwrapped; includes aiobotocore's own work; "
                f"{CALLS} calls in {elapsed:.2f} s wrapped vs {plain_elapsed:.2f} s unwrapped"
            ),
        )
    )
    reserve, evalsha = asyncio.run(_hot_path())
    rows.append(
        Row(
            "async budgets: await reserve + queued settle, 2 budgets, Redis",
            reserve,
            "us",
            evalsha,
            "one raw async EVALSHA (return 1)",
            note="median of interleaved calls; the settlement batch is sent between timed calls",
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
        [str(ASYNC_VENV), __file__, "--json"], capture_output=True, text=True, check=True, timeout=900
    )
    return [Row(**fields) for fields in json.loads(done.stdout)]


def _main(argv: list[str], emit: Callable[[str], None] = print) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    measured = measure()
    emit(json.dumps([asdict(row) for row in measured]) if "--json" in argv else render(measured))


if __name__ == "__main__":
    _main(sys.argv)
