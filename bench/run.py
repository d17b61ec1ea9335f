"""Run every benchmark and print one table: ``make bench`` (or ``.venv/bin/python bench/run.py``).

    bench/run.py [--only NAME ...] [--json results.json]

Every ratio is against a baseline measured in the same run. A benchmark that fails adds a FAILED row and
the others still run. Redis benchmarks need the Redis that ``make services`` starts; the cluster is
started and torn down by the throughput benchmark itself.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

BENCHMARKS = {
    "pricing": "pricing",
    "import": "import_time",
    "wrapper": "wrapper",
    "async-wrapper": "async_wrapper",
    "async-budgets": "async_budgets",
    "async-leases": "async_leases",
    "hot-path": "hot_path",
    "request-limits": "request_limits",
    "count-tokens": "count_tokens",
    "throughput": "throughput",
    "memory": "memory_users",
    "fake-server": "fake_server_throughput",
    "journal": "journal",
    "tracking": "tracking",
    "live-budgets": "live_budgets",
}


def main() -> int:
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    from report import Row, dump, render

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    rows: list[Row] = []
    failed = False
    started = time.perf_counter()
    for name, module_name in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            rows.extend(importlib.import_module(module_name).run())
        except Exception as exc:
            failed = True
            traceback.print_exc()
            rows.append(Row(f"{name}: FAILED ({type(exc).__name__}: {exc})", 0.0, "", met=False))
        print(f"  {name} took {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    print(f"all benchmarks took {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print()
    print(render(rows))
    if args.json:
        dump(rows, args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
