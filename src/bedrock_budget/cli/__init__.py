"""The ``bedrock-budget`` command line."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from bedrock_budget.cli.app import run

    return run(argv)
