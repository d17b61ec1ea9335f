"""Pricing speed: microseconds per priced call, against genai-prices' ``calc_price`` in the same run.

Run: ``make bench`` (or ``.venv/bin/python bench/pricing.py``). genai-prices is installed for the benchmark
only; it is never a dependency of bedrock-budget.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import timeit
from collections.abc import Callable

from bedrock_budget.pricing import default_price_table
from bedrock_budget.usage import Usage

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE = f"us.{MODEL}"


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
        if result.returncode != 0:
            print("genai-prices could not be installed; comparison skipped", file=sys.stderr)
            return False
    return True


def run() -> list[tuple[str, float, str]]:
    table = default_price_table()
    usage = Usage(input_tokens=2000, output_tokens=500, cache_read_tokens=1000, cache_write_tokens=200)
    rows: list[tuple[str, float, str]] = []
    ours = per_call_us(lambda: table.price(MODEL, usage), 200_000)
    rows.append(("bedrock-budget price() base id", ours, "target <= 2 us"))
    ours_profile = per_call_us(lambda: table.price(PROFILE, usage), 200_000)
    rows.append(("bedrock-budget price() us. profile", ours_profile, ""))
    with_total = per_call_us(lambda: table.price(MODEL, usage).total_usd, 100_000)
    rows.append(("bedrock-budget price() + Decimal total", with_total, ""))
    if ensure_genai_prices():
        from genai_prices import Usage as GenaiUsage
        from genai_prices import calc_price

        genai_usage = GenaiUsage(
            input_tokens=2000 + 1000 + 200, output_tokens=500, cache_read_tokens=1000, cache_write_tokens=200
        )
        theirs = per_call_us(lambda: calc_price(genai_usage, model_ref=MODEL, provider_id="aws"), 5_000)
        rows.append(("genai-prices calc_price()", theirs, f"ratio ours/theirs = {ours / theirs:.3f}"))
    return rows


def main() -> None:
    print(f"{'pricing benchmark':<42}{'us/call':>10}  note")
    for name, micros, note in run():
        print(f"{name:<42}{micros:>10.3f}  {note}")


if __name__ == "__main__":
    main()
