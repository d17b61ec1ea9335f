"""One rule for every stage after a successful Bedrock call: a failure of our own is counted, logged once
per stage by the :class:`~bedrock_budget.records.FailureCounter`, and never reaches the caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from bedrock_budget.records import FailureCounter

P = ParamSpec("P")
T = TypeVar("T")


def run_safely(
    failures: FailureCounter, stage: str, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T | None:
    """``func(*args, **kwargs)``, or ``None`` once its failure is counted under ``stage``."""
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        failures.record(stage, exc)
        return None
