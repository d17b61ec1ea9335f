"""What ``import bedrock_budget`` adds on top of ``import boto3`` (target: at most 60 ms)."""

from __future__ import annotations

import statistics
import subprocess
import sys


def _time(code: str, runs: int = 15) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import time; t=time.perf_counter(); {code}; print(time.perf_counter()-t)",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(out.stdout))
    return statistics.median(samples) * 1000


def main() -> None:
    boto = _time("import boto3")
    both = _time("import boto3, bedrock_budget")
    first_use = _time("import boto3, bedrock_budget; bedrock_budget.wrap")
    print(f"{'import time (median of 15, ms)':<42}{'ms':>10}  note")
    print(f"{'import boto3':<42}{boto:>10.1f}")
    print(f"{'import boto3, bedrock_budget':<42}{both:>10.1f}  adds {both - boto:.1f} ms (target <= 60)")
    print(f"{'... + first use of bedrock_budget.wrap':<42}{first_use:>10.1f}  adds {first_use - boto:.1f} ms")


if __name__ == "__main__":
    main()
