"""Budgets: definitions, windows, loading and the ledger that enforces them.

``Budget`` and the loaders are imported eagerly (they are cheap); the ledger, which pulls in the stores and
alert sinks, is imported on first access so ``import bedrock_budget`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bedrock_budget.budgets.loading import (
    budgets_from_data,
    budgets_from_env,
    configured_budgets,
    load_budgets,
    parse_budgets_yaml,
)
from bedrock_budget.budgets.model import ACTIONS, TOKEN_TYPES, Budget
from bedrock_budget.budgets.windows import WINDOW_KINDS, Window, window_bounds

if TYPE_CHECKING:
    from bedrock_budget.budgets.ledger import Ledger
    from bedrock_budget.budgets.lines import ReservationLine
    from bedrock_budget.budgets.outcomes import BudgetStatus, Refusal, Reservation

__all__ = [
    "ACTIONS",
    "TOKEN_TYPES",
    "WINDOW_KINDS",
    "Budget",
    "BudgetStatus",
    "Ledger",
    "Refusal",
    "Reservation",
    "ReservationLine",
    "Window",
    "budgets_from_data",
    "budgets_from_env",
    "configured_budgets",
    "load_budgets",
    "parse_budgets_yaml",
    "window_bounds",
]

_LAZY = frozenset({"BudgetStatus", "Ledger", "Refusal", "Reservation", "ReservationLine"})


def __getattr__(name: str) -> Any:
    if name == "Ledger":
        from bedrock_budget.budgets.ledger import Ledger

        return Ledger
    if name == "ReservationLine":
        from bedrock_budget.budgets.lines import ReservationLine

        return ReservationLine
    if name in _LAZY:
        from bedrock_budget.budgets import outcomes

        return getattr(outcomes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
