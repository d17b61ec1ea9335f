"""Check price files from the command line: ``python -m bedrock_budget.pricing.maintenance.validate
[FILE_OR_FOLDER ...]`` (default: the bundled prices). Prints every problem and exits 1, or prints
``ok: N files, M models``. ``bedrock-budget prices validate`` does the same for one path."""

from __future__ import annotations

import sys

from bedrock_budget.errors import PriceFileError
from bedrock_budget.pricing.bundled import BUNDLED_PRICES
from bedrock_budget.pricing.schema import validate_paths


def main(argv: list[str]) -> int:
    targets = argv or [str(BUNDLED_PRICES)]
    try:
        files = validate_paths(targets)
    except PriceFileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    count = sum(len(f.models) for f in files)
    print(f"ok: {len(files)} files, {count} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
