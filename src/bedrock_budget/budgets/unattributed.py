"""Calls that lack an attribution key a ``"*"`` budget needs: counted per budget and policy, and refused
where the budget says so (see ``on_unattributed`` in ``budgets.model``).

The budget guard passes the counts on to its store observers (the Prometheus
``bedrock_budget_unattributed_calls_total``), so a code path that forgets attribution shows up on a
dashboard whatever the policy. Only budget names, policies and counts are kept.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from decimal import Decimal

from bedrock_budget.budgets.model import UNATTRIBUTED, Budget
from bedrock_budget.errors import UnattributedCallError
from bedrock_budget.pricing.money import nanos_to_usd

__all__ = ["UnattributedTally", "missing_keys", "unattributed_error"]


def missing_keys(budget: Budget, attribution: Mapping[str, str]) -> tuple[str, ...]:
    """The budget's wildcard keys the call has no value for."""
    return tuple(key for key in budget.wildcard_keys if not attribution.get(key))


def unattributed_error(budget: Budget, missing: tuple[str, ...], cost_nanos: int) -> UnattributedCallError:
    """The error for a call an ``on_unattributed="refuse"`` budget turns away."""
    usd = budget.limit_usd is not None
    limit = budget.limit_usd if budget.limit_usd is not None else budget.limit_tokens
    assert limit is not None  # a budget has at least one limit
    return UnattributedCallError(
        missing=missing,
        refusals=(),
        budget=budget.name,
        scope=dict.fromkeys(missing, UNATTRIBUTED),
        window=budget.window.kind,
        window_start=None,
        resets_at=None,
        unit="usd" if usd else "tokens",
        limit=limit,
        spent=Decimal(0),
        reserved=Decimal(0),
        requested=nanos_to_usd(cost_nanos) if usd else Decimal(0),
        reason="on_unattributed: refuse",
    )


class UnattributedTally:
    """Cumulative unattributed calls per (budget name, policy). Thread-safe; ``version`` moves whenever a
    count does, so a reader can tell cheaply that nothing changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self.version = 0

    def note(self, budget: Budget) -> None:
        key = (budget.name, budget.on_unattributed)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            self.version += 1

    def totals(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)
