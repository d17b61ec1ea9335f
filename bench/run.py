"""Run every benchmark and print its table. ``make bench``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

BENCHMARKS = ["pricing", "import_time"]


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for name in BENCHMARKS:
        module = importlib.import_module(name)
        print()
        module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
