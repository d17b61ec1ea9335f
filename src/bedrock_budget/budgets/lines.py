"""What one reservation (or capacity lease) holds against one budget: a module of its own because both
reservations (``outcomes``) and leases (``leases``) are made of these lines."""

from __future__ import annotations

from dataclasses import dataclass

from bedrock_budget.budgets.model import Budget
from bedrock_budget.stores.base import CounterRef

__all__ = ["ReservationLine"]


@dataclass(frozen=True, slots=True)
class ReservationLine:
    """One budget a reservation touches: its counter and the amounts held there (nano-USD, milli-tokens)."""

    budget: Budget
    ref: CounterRef
    usd: int
    tokens: int
