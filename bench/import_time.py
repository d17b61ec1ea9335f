"""What ``import bedrock_budget`` adds on top of ``import boto3`` (target: at most 60 ms), each timed in a
fresh interpreter, median of 15. Run alone: ``.venv/bin/python bench/import_time.py``."""

from __future__ import annotations

import statistics
import subprocess
import sys

from report import Row, render

RUNS = 15
TARGET_MS = 60.0


def _median_ms(setup: str, timed: str) -> float:
    code = f"import time\n{setup}\nt = time.perf_counter()\n{timed}\nprint(time.perf_counter() - t)"
    samples = []
    for _ in range(RUNS):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        samples.append(float(done.stdout))
    return statistics.median(samples) * 1000


def run() -> list[Row]:
    boto = _median_ms("", "import boto3")
    # Timed in the same interpreter right after boto3, so the difference is not two noisy medians apart.
    ours = _median_ms("import boto3", "import bedrock_budget")
    first_wrap = _median_ms("import boto3", "import bedrock_budget\nbedrock_budget.wrap")
    return [
        Row(
            "import: bedrock_budget after boto3",
            ours,
            "ms",
            boto,
            "import boto3",
            f"<= {TARGET_MS:g} ms",
            ours <= TARGET_MS,
        ),
        Row(
            "import: bedrock_budget + first use of bb.wrap",
            first_wrap,
            "ms",
            boto,
            "import boto3",
            note="bb.wrap loads the wrapper, price table and resolver on first use (lazy module attribute)",
        ),
    ]


if __name__ == "__main__":
    print(render(run()))
