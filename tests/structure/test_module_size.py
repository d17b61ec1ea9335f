"""Modules stay small enough to read in one sitting: none over ``LIMIT`` lines unless it is listed here
with the reason it is one thought."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "src" / "bedrock_budget"
LIMIT = 500

#: Modules allowed past the limit, each with why splitting it would scatter one idea.
ALLOWED: dict[str, str] = {}


def sizes() -> dict[str, int]:
    return {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }


def test_no_module_is_over_the_limit_without_a_reason() -> None:
    over = {name: lines for name, lines in sizes().items() if lines > LIMIT and name not in ALLOWED}
    assert not over, f"modules over {LIMIT} lines: {over}"


def test_every_allowance_is_still_needed() -> None:
    current = sizes()
    stale = [name for name in ALLOWED if current.get(name, 0) <= LIMIT]
    assert not stale, f"no longer over {LIMIT} lines (drop them from ALLOWED): {stale}"
