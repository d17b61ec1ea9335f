"""Pricing speed: microseconds per priced call, against genai-prices' ``calc_price`` in the same run.

genai-prices is installed for the benchmark only (``pip install genai-prices`` on first run); it is never a
dependency of bedrock-budget. Run alone: ``.venv/bin/python bench/pricing.py``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import timeit
from collections.abc import Callable

from bedrock_budget.pricing import default_price_table
from bedrock_budget.usage import Usage
from report import Row, render

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE = f"us.{MODEL}"
TARGET_US = 2.0


def per_call_us(func: Callable[[], object], number: int) -> float:
    func()  # warm caches: both libraries index their data on first use
    best = min(timeit.repeat(func, number=number, repeat=5))
    return best / number * 1e6


def ensure_genai_prices() -> bool:
    if importlib.util.find_spec("genai_prices") is None:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "genai-prices"],
            capture_output=True,
            check=False,
        )
        importlib.invalidate_caches()
        if result.returncode != 0:
            print("genai-prices could not be installed; comparison skipped", file=sys.stderr)
            return False
    return True


def run() -> list[Row]:
    table = default_price_table()
    usage = Usage(input_tokens=2000, output_tokens=500, cache_read_tokens=1000, cache_write_tokens=200)
    theirs: float | None = None
    if ensure_genai_prices():
        from genai_prices import Usage as GenaiUsage
        from genai_prices import calc_price

        # genai-prices counts cached tokens inside input_tokens; Bedrock (and we) count them apart.
        genai_usage = GenaiUsage(
            input_tokens=2000 + 1000 + 200, output_tokens=500, cache_read_tokens=1000, cache_write_tokens=200
        )
        theirs = per_call_us(lambda: calc_price(genai_usage, model_ref=MODEL, provider_id="aws"), 5_000)
    baseline = "genai-prices calc_price" if theirs is not None else ""
    rows = []
    for name, call in (
        ("pricing: price(), base model id", lambda: table.price(MODEL, usage)),
        ("pricing: price(), us. inference profile", lambda: table.price(PROFILE, usage)),
    ):
        ours = per_call_us(call, 200_000)
        rows.append(Row(name, ours, "us", theirs, baseline, f"<= {TARGET_US:g} us", ours <= TARGET_US))
    with_total = per_call_us(lambda: table.price(MODEL, usage).total_usd, 100_000)
    rows.append(Row("pricing: price() + Decimal total_usd", with_total, "us", theirs, baseline))
    return rows


if __name__ == "__main__":
    print(render(run()))
