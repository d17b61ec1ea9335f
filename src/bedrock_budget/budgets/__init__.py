"""Budgets: definitions, windows, loading and the ledger that enforces them.

``Budget`` and the loaders are imported eagerly (they are cheap); the ledger, which pulls in the stores and
alert sinks, is imported on first access so ``import bedrock_budget`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bedrock_budget._lazy_exports import lazy_exports
from bedrock_budget.budgets.fields import TOKEN_TYPES
from bedrock_budget.budgets.loading import (
    budgets_from_data,
    budgets_from_env,
    configured_budgets,
    load_budgets,
    parse_budgets_yaml,
)
from bedrock_budget.budgets.model import ACTIONS, Budget
from bedrock_budget.budgets.windows import WINDOW_KINDS, Window, window_bounds

_EXPORTS: Final = {
    "AsyncLedger": "bedrock_budget.budgets.async_ledger",
    "BudgetStatus": "bedrock_budget.budgets.status",
    "Ledger": "bedrock_budget.budgets.ledger",
    "Refusal": "bedrock_budget.budgets.outcomes",
    "Reservation": "bedrock_budget.budgets.outcomes",
    "ReservationLine": "bedrock_budget.budgets.lines",
}
__all__ = [
    "ACTIONS",
    "TOKEN_TYPES",
    "WINDOW_KINDS",
    "Budget",
    "Window",
    "budgets_from_data",
    "budgets_from_env",
    "configured_budgets",
    "load_budgets",
    "parse_budgets_yaml",
    "window_bounds",
]
__all__ += sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:
    from bedrock_budget.budgets.async_ledger import AsyncLedger as AsyncLedger
    from bedrock_budget.budgets.ledger import Ledger as Ledger
    from bedrock_budget.budgets.lines import ReservationLine as ReservationLine
    from bedrock_budget.budgets.outcomes import Refusal as Refusal
    from bedrock_budget.budgets.outcomes import Reservation as Reservation
    from bedrock_budget.budgets.status import BudgetStatus as BudgetStatus
