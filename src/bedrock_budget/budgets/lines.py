"""What one reservation (or capacity lease) holds against one budget: a module of its own because both
reservations (``outcomes``) and leases (``leases``) are made of these lines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bedrock_budget.budgets.model import Budget
from bedrock_budget.stores.base import CounterRef, Mark, Spend

__all__ = ["ReservationLine"]


@dataclass(frozen=True, slots=True)
class ReservationLine:
    """One budget a reservation touches: its counter and the amounts held there (nano-USD, milli-tokens)."""

    budget: Budget
    ref: CounterRef
    usd: int
    tokens: int

    def spend(
        self, cost_nanos: int, tokens: Mapping[str, int], marks: tuple[Mark, ...], epoch: str | None
    ) -> Spend:
        """The settlement of one call here: its actual amounts, and its one request where the budget limits
        requests (settling never changes the count: the request held becomes a request made)."""
        requests = None if self.budget.limit_requests is None else 1
        return Spend(self.ref, cost_nanos, self.budget.weigh(tokens), marks, epoch, requests)
