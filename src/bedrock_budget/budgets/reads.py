"""The ledger's reads and resets of budget windows, which apply the ledger's queued settlements first so a
process sees its own spend."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bedrock_budget.budgets.compiled import CompiledBudgets
from bedrock_budget.budgets.status import BudgetStatus
from bedrock_budget.stores.base import Store


class LedgerReads:
    """Mixed into :class:`~bedrock_budget.budgets.ledger.Ledger`, which sets the parts below."""

    store: Store
    _budgets: CompiledBudgets
    _clock: Callable[[], float]

    def _drain(self) -> None:
        raise NotImplementedError

    def read(self, budget: str, scope: Mapping[str, str] | None = None) -> BudgetStatus:
        """The current window of one budget for concrete scope values (``{"user": "u-17"}`` for a per-user
        budget; defaults to the budget's own scope, which suits budgets without wildcards)."""
        from bedrock_budget.reporting.budget_admin import read_window

        config = self._budgets.budget(budget)
        self._drain()
        return read_window(self.store, config, scope, self._clock())

    def status(self, budget: str | None = None) -> list[BudgetStatus]:
        """Every current-window counter of the configured budgets (one per scope value for wildcard
        budgets; budgets without wildcards are listed even before their first call)."""
        from bedrock_budget.reporting.budget_admin import current_windows

        self._drain()
        return current_windows(self.store, self._budgets.budgets, budget, self._clock())

    def reset(self, budget: str, scope: Mapping[str, str] | None = None) -> int:
        """Forget the current window's spend of a budget (all scope values unless ``scope`` is given);
        returns how many counters existed.

        Live holds survive the reset (:meth:`Store.forget_spend`): reservations in flight and other
        processes' capacity leases keep their capacity held, and their spend is charged to the fresh
        window when they settle, so a reset never lets them overshoot it."""
        from bedrock_budget.reporting.budget_admin import forget_window_spend

        self._budgets.budget(budget)
        self._drain()
        return forget_window_spend(self.store, self._budgets.budgets, budget, scope, self._clock())
